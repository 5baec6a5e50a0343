import { z } from 'zod';
import { issueOutput, trackerPage } from './outputs.ts';
import { OpError } from '../../errors.ts';
import { nullIfUnseen } from '../../pm/errors.ts';
import { fieldList, issueKey, markdownText, pageOutput, pmCursor, pmLimit, pmTool, projectRef } from './tools.ts';
import type { IssueInput } from '../../pm/provider.ts';

const INCLUDES = ['comments', 'transitions', 'links', 'subtasks', 'history'] as const;
const labels = z.array(z.string().trim().min(1).max(255).regex(/^\S+$/, 'labels cannot contain spaces')).max(50);
// What has an input of its own (and so its checks: the binding guard sees `project` and
// `parent`) cannot come in through `fields` as well.
const OWN_INPUTS = ['project', 'parent', 'issuetype', 'summary', 'description', 'priority', 'labels', 'assignee'];
// What moves an issue or names another one on Redmine and OpenProject (the guard checks `project`
// and `parent`, never these).
const TRACKER_LINKS = ['project_id', 'parent_issue_id', 'parent_id', 'tracker_id', 'lockversion'];
export const passthroughFields = z
  .record(z.string().max(100), z.unknown())
  .superRefine((fields, issue) => {
    for (const name of Object.keys(fields)) {
      if (OWN_INPUTS.includes(name.toLowerCase())) issue.addIssue({ code: 'custom', path: [name], message: `has an input of its own (${name === 'issuetype' ? 'type' : name}); give it there` });
      else if (name.startsWith('_') || TRACKER_LINKS.includes(name.toLowerCase())) issue.addIssue({ code: 'custom', path: [name], message: 'cannot be set through fields (it moves the issue or links other resources); use project, parent, type or the link tools' });
    }
  });
const extraFields = passthroughFields.optional()
  .describe('further tracker fields by id (Jira: or by name, e.g. "Story Points"), values as the tracker expects them (see get_create_fields for allowed values); not project, parent or the other fields with inputs of their own');

const issueChanges = {
  summary: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters').optional(),
  description: markdownText('the description').optional(),
  priority: z.string().trim().min(1).max(100).optional().describe('priority name, e.g. High'),
  labels: labels.optional(),
  assignee: z.string().trim().min(1).max(320).optional().describe('account id, email, name, or "me"'),
  parent: issueKey.optional().describe('parent issue key (sub-tasks, or epics on Jira Cloud)'),
  fields: extraFields,
};

function issueInput(input: Partial<Record<keyof typeof issueChanges | 'project' | 'type', unknown>>): IssueInput {
  const out: IssueInput = {};
  for (const key of ['project', 'type', 'summary', 'description', 'priority', 'labels', 'assignee', 'parent', 'fields'] as const) {
    if (input[key] !== undefined) (out as Record<string, unknown>)[key] = input[key];
  }
  return out;
}

export const searchIssues = pmTool({
  name: 'search_issues',
  toolset: 'issues',
  scope: () => 'search',
  route: { method: 'GET', path: '/api/pm/issues' },
  title: 'Search issues',
  description:
    'Find issues in your tracker. query takes the tracker\'s own language (JQL on Jira); simple filters combine with it: project, assignee ("me", "none", an email or name), status, text, updated_since (ISO date). ' +
    'Returns compact issues (key, summary, status, type, priority, assignee, project, updated; plus the fields you ask for) and next_cursor for the next page.',
  output: trackerPage(issueOutput),
  input: {
    query: z.string().trim().max(4000, 'must be at most 4000 characters').optional(),
    project: projectRef.optional(),
    assignee: z.string().trim().min(1).max(320).optional(),
    status: z.string().trim().min(1).max(100).optional(),
    text: z.string().trim().min(1).max(500).optional(),
    updated_since: z.string().trim().max(40).optional(),
    fields: fieldList,
    limit: pmLimit,
    cursor: pmCursor,
  },
  async run(tracker, input, ctx) {
    const page = await tracker.searchIssues({ ...input, updatedSince: input.updated_since, confineTo: ctx.trackerProjects });
    return pageOutput(page);
  },
});

export const getIssue = pmTool({
  name: 'get_issue',
  toolset: 'issues',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}' },
  title: 'Get an issue',
  description: 'One issue with its description (Markdown, long texts truncated with a marker). include adds comments, transitions, links, subtasks and/or history; fields adds further fields by id.',
  output: issueOutput,
  input: { key: issueKey, fields: fieldList, include: z.array(z.enum(INCLUDES)).max(5).default([]) },
  target: (input) => `issue:${input.key}`,
  checksAnswer: true,
  async run(tracker, input, ctx) {
    const issue = await tracker.getIssue(input.key, { fields: input.fields, include: input.include, confined: ctx.mayActOn !== undefined });
    const mayActOn = ctx.mayActOn;
    if (mayActOn && issue.subtasks?.length) {
      // A Redmine or OpenProject sub-task may be in another project (or one the account cannot
      // see): a confined caller sees those it may read only.
      const shown = await Promise.all(issue.subtasks.map(async (subtask) => {
        const project = await tracker.bindingProjectOfIssue(subtask.key).catch(nullIfUnseen);
        return project !== null && (await mayActOn(project)) ? subtask : null;
      }));
      issue.subtasks = shown.filter((subtask) => subtask !== null);
    }
    return issue;
  },
});

export const createIssue = pmTool({
  name: 'create_issue',
  toolset: 'issues',
  scope: (input) => ({ projects: [input.project], issues: [{ key: input.parent, field: 'parent' }] }),
  route: { method: 'POST', path: '/api/pm/issues', status: () => 201 },
  title: 'Create an issue',
  description: 'Creates an issue in a project (key) with a type (name or id), summary and optional Markdown description, priority, labels, assignee ("me", email, name or account id), parent and further fields. Returns its key and URL.',
  output: z.strictObject({ key: z.string(), id: z.string(), url: z.string() }),
  input: {
    project: projectRef,
    type: z.string().trim().min(1, 'must not be empty').max(100).describe('issue type name or id, e.g. Task (Redmine: tracker)'),
    ...issueChanges,
    summary: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters'),
  },
  write: true,
  target: (input) => `project:${input.project}`,
  run: (tracker, input, ctx) => tracker.createIssue({ ...issueInput(input), ...(ctx.mayActOn ? { confined: true } : {}) }),
});

export const updateIssue = pmTool({
  name: 'update_issue',
  toolset: 'issues',
  scope: (input) => ({ issues: [input.key, { key: input.parent, field: 'parent' }] }),
  route: { method: 'PATCH', path: '/api/pm/issues/{key}' },
  title: 'Update an issue',
  description:
    'Changes the given fields of an issue (summary, Markdown description, priority, labels, assignee, parent, further fields); only those are sent, so fields not given stay exactly as they are (rich text included). ' +
    'On Jira, a new description over one holding what Markdown cannot carry (panels, mentions, colours, macros, attachments shown inline) is refused unless replace_rich_text is true.',
  output: z.strictObject({ key: z.string(), updated: z.array(z.string()).describe('the fields changed') }),
  input: {
    key: issueKey,
    ...issueChanges,
    replace_rich_text: z.boolean().default(false).describe('Jira: replace a description holding rich text Markdown cannot carry (panels, mentions, colours, macros...); without it such an edit is refused'),
  },
  write: true,
  idempotent: true,
  target: (input) => `issue:${input.key}`,
  async run(tracker, input, ctx) {
    const changes = issueInput(input);
    if (!Object.keys(changes).length) throw new OpError('invalid_input', 'nothing to change: give at least one of summary, description, priority, labels, assignee, parent, fields', { field: 'summary' });
    await tracker.updateIssue(input.key, { ...changes, ...(input.replace_rich_text ? { replaceRichText: true } : {}), ...(ctx.mayActOn ? { confined: true } : {}) });
    return { key: input.key, updated: Object.keys(changes) };
  },
});

export const deleteIssue = pmTool({
  name: 'delete_issue',
  toolset: 'issues',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'DELETE', path: '/api/pm/issues/{key}' },
  title: 'Delete an issue',
  description: 'Deletes an issue for good (with its sub-tasks only if delete_subtasks is true). Offered only where the deployment enables deleting.',
  output: z.strictObject({ key: z.string(), deleted: z.literal(true) }),
  input: { key: issueKey, delete_subtasks: z.boolean().default(false) },
  write: true,
  destructive: true,
  target: (input) => `issue:${input.key}`,
  async run(tracker, input, ctx) {
    if (!ctx.pm.settings.allowDelete) throw new OpError('forbidden', 'permission denied: deleting issues is disabled in this deployment (MANDATE_PM_ALLOW_DELETE)');
    await tracker.deleteIssue(input.key, input.delete_subtasks);
    return { key: input.key, deleted: true };
  },
});
