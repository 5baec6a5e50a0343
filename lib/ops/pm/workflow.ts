import { z } from 'zod';
import { passthroughFields } from './issues.ts';
import { accountOutput, trackerItems, transitionOutput } from './outputs.ts';
import { issueKey, markdownText, pmTool, requireOneOf } from './tools.ts';

export const listTransitions = pmTool({
  name: 'list_transitions',
  toolset: 'workflow',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}/transitions' },
  title: 'List an issue\'s transitions',
  description: 'The workflow transitions an issue can take now (id, name, target status).',
  output: trackerItems(transitionOutput),
  input: { key: issueKey },
  target: (input) => `issue:${input.key}`,
  run: async (tracker, input) => ({ items: await tracker.listTransitions(input.key) }),
});

export const transitionIssue = pmTool({
  name: 'transition_issue',
  toolset: 'workflow',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/transitions' },
  title: 'Transition an issue',
  description: 'Moves an issue through its workflow by transition id or name (a target status name works too), optionally setting fields the transition screen asks for and adding a Markdown comment.',
  output: z.strictObject({ key: z.string(), transition: transitionOutput }),
  input: {
    key: issueKey,
    transition: z.string().trim().min(1).max(100).optional().describe('transition id'),
    name: z.string().trim().min(1).max(100).optional().describe('transition or target status name, e.g. Done'),
    fields: passthroughFields.optional(),
    comment: markdownText('a comment').optional(),
  },
  write: true,
  target: (input) => `issue:${input.key}`,
  async run(tracker, input, ctx) {
    requireOneOf(input, ['transition', 'name']);
    const done = await tracker.transitionIssue(input.key, {
      ...(ctx.mayActOn ? { confined: true } : {}),
      ...(input.transition ? { id: input.transition } : {}),
      ...(input.name ? { name: input.name } : {}),
      ...(input.fields ? { fields: input.fields } : {}),
      ...(input.comment ? { comment: input.comment } : {}),
    });
    return { key: input.key, transition: done };
  },
});

export const assignIssue = pmTool({
  name: 'assign_issue',
  toolset: 'workflow',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/assignee' },
  title: 'Assign an issue',
  description: 'Assigns an issue to "me", an email, a name or an account id (resolved to the tracker\'s own user id), or unassigns it with assignee null.',
  output: z.strictObject({ key: z.string(), assignee: accountOutput.nullable() }),
  input: { key: issueKey, assignee: z.string().trim().min(1).max(320).nullable() },
  write: true,
  idempotent: true,
  target: (input) => `issue:${input.key}`,
  run: async (tracker, input) => ({ key: input.key, assignee: await tracker.assignIssue(input.key, input.assignee) }),
});
