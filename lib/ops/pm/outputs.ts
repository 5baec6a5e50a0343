import { z } from 'zod';

// What the tracker tools return, in the tools' own vocabulary (lib/pm/provider.ts), whatever the
// tracker: the same shapes for Jira, Redmine and OpenProject.

const text = z.string();
const maybe = z.string().nullable();

export const accountOutput = z.strictObject({ id: text, name: text, email: maybe.optional() });

export const commentOutput = z.strictObject({ id: text, author: accountOutput.nullable(), body: text.describe('Markdown'), created: maybe, updated: maybe });

export const transitionOutput = z.strictObject({ id: text, name: text, to: maybe });

export const issueLinkOutput = z.strictObject({
  id: text,
  type: text,
  direction: z.enum(['inward', 'outward']),
  relation: text.describe('how the link reads from this issue, e.g. "blocks"'),
  issue: text,
});

export const issueOutput = z.strictObject({
  key: text,
  id: text,
  url: text,
  summary: text,
  status: maybe,
  type: maybe,
  priority: maybe,
  assignee: accountOutput.nullable(),
  reporter: accountOutput.nullable(),
  project: maybe,
  parent: maybe,
  labels: z.array(text),
  created: maybe,
  updated: maybe,
  description: maybe.describe('Markdown'),
  fields: z.record(z.string(), z.unknown()).optional().describe('further fields asked for by id, as the tracker returned them'),
  comments: z.array(commentOutput).optional(),
  transitions: z.array(transitionOutput).optional(),
  links: z.array(issueLinkOutput).optional(),
  subtasks: z.array(z.strictObject({ key: text, summary: text, status: maybe })).optional(),
  history: z.array(z.strictObject({ at: text, author: maybe, changes: z.array(z.strictObject({ field: text, from: maybe, to: maybe })) })).optional(),
});

export const projectOutput = z.strictObject({
  key: text,
  id: text,
  name: text,
  url: maybe.optional(),
  description: maybe.optional(),
  lead: accountOutput.nullable().optional(),
  issue_types: z.array(z.strictObject({ id: text, name: text, subtask: z.boolean() })).optional(),
});

export const fieldOutput = z.strictObject({
  id: text,
  name: text,
  type: maybe,
  required: z.boolean().optional(),
  allowed_values: z.array(text).optional(),
  custom: z.boolean().optional(),
});

export const namedOutput = z.strictObject({ id: text, name: text, description: maybe.optional() });
export const boardOutput = z.strictObject({ id: text, name: text, type: maybe, project: maybe });
export const sprintOutput = z.strictObject({ id: text, name: text, state: maybe, start: maybe, end: maybe, goal: maybe });
export const worklogOutput = z.strictObject({ id: text, author: accountOutput.nullable(), time_spent: maybe, seconds: z.number().nullable(), started: maybe, comment: text });
export const linkTypeOutput = z.strictObject({ id: text, name: text, inward: text, outward: text });

/** A tracker page: the cursor for the next one, and the total where the tracker counts. */
export function trackerPage<Item extends z.ZodType>(item: Item) {
  return z.strictObject({ items: z.array(item), next_cursor: z.string().nullable(), total: z.number().int().nullable().optional() });
}

export function trackerItems<Item extends z.ZodType>(item: Item) {
  return z.strictObject({ items: z.array(item) });
}
