import { z } from 'zod';
import { trackerPage, worklogOutput } from './outputs.ts';
import { issueKey, pageOutput, pmCursor, pmLimit, pmTool } from './tools.ts';

export const listWorklogs = pmTool({
  name: 'list_worklogs',
  toolset: 'worklogs',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}/worklogs' },
  title: 'List worklogs',
  description: 'Time logged on an issue (who, how long, when, comment), a page at a time.',
  output: trackerPage(worklogOutput),
  input: { key: issueKey, limit: pmLimit, cursor: pmCursor },
  target: (input) => `issue:${input.key}`,
  async run(tracker, input) {
    const page = await tracker.listWorklogs(input.key, input);
    return pageOutput(page);
  },
});

export const addWorklog = pmTool({
  name: 'add_worklog',
  toolset: 'worklogs',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/worklogs', status: () => 201 },
  title: 'Log time',
  description: 'Logs time on an issue: time_spent like "2h 30m" or "1d", optional started (ISO date-time) and comment.',
  output: worklogOutput,
  input: {
    key: issueKey,
    time_spent: z.string().trim().regex(/^(\d+(\.\d+)?\s*[wdhm]\s*)+$/i, 'must look like "2h 30m", "1.5h", "90m" or "1d"'),
    started: z.string().trim().max(40).optional(),
    comment: z.string().max(4000).optional(),
  },
  write: true,
  target: (input) => `issue:${input.key}`,
  run: (tracker, input) => tracker.addWorklog(input.key, { timeSpent: input.time_spent, started: input.started, comment: input.comment }),
});
