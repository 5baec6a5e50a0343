import { z } from 'zod';
import { boardOutput, issueOutput, sprintOutput, trackerPage } from './outputs.ts';
import { fieldList, issueKey, pageOutput, pmCursor, pmLimit, pmTool, projectRef } from './tools.ts';

const numericId = (what: string) => z.string().trim().regex(/^\d+$/, `must be the numeric id of ${what}`);
const keys = z.array(issueKey).min(1, 'give at least one issue').max(50, 'at most 50 issues at once');

export const listBoards = pmTool({
  name: 'list_boards',
  toolset: 'agile',
  scope: (input) => (input.project === undefined ? 'global' : { projects: [input.project] }),
  route: { method: 'GET', path: '/api/pm/boards' },
  title: 'List boards',
  description: 'Jira boards (id, name, scrum or kanban), optionally of one project.',
  output: trackerPage(boardOutput),
  input: { project: projectRef.optional(), limit: pmLimit, cursor: pmCursor },
  async run(tracker, input) {
    const page = await tracker.listBoards(input);
    return pageOutput(page);
  },
});

export const listSprints = pmTool({
  name: 'list_sprints',
  toolset: 'agile',
  route: { method: 'GET', path: '/api/pm/boards/{board}/sprints' },
  title: 'List sprints',
  description: 'A board\'s sprints, optionally only those in a state (future, active, closed).',
  output: trackerPage(sprintOutput),
  input: { board: numericId('a board'), state: z.enum(['future', 'active', 'closed']).optional(), limit: pmLimit, cursor: pmCursor },
  target: (input) => `board:${input.board}`,
  async run(tracker, input) {
    const page = await tracker.listSprints(input.board, input);
    return pageOutput(page);
  },
});

export const listSprintIssues = pmTool({
  name: 'list_sprint_issues',
  toolset: 'agile',
  route: { method: 'GET', path: '/api/pm/sprints/{sprint}/issues' },
  title: 'List a sprint\'s issues',
  description: 'The issues in a sprint, compact, a page at a time.',
  output: trackerPage(issueOutput),
  input: { sprint: numericId('a sprint'), fields: fieldList, limit: pmLimit, cursor: pmCursor },
  target: (input) => `sprint:${input.sprint}`,
  async run(tracker, input) {
    const page = await tracker.sprintIssues(input.sprint, input);
    return pageOutput(page);
  },
});

export const moveToSprint = pmTool({
  name: 'move_to_sprint',
  toolset: 'agile',
  // The sprint belongs to a board, which no one tracker project bounds: a global grant.
  scope: () => 'global',
  route: { method: 'POST', path: '/api/pm/sprints/{sprint}/issues' },
  title: 'Move issues to a sprint',
  description: 'Moves up to 50 issues into a sprint (future or active).',
  output: z.strictObject({ sprint: z.string(), moved: z.array(z.string()) }),
  input: { sprint: numericId('a sprint'), issues: keys },
  write: true,
  idempotent: true,
  target: (input) => `sprint:${input.sprint}`,
  async run(tracker, input) {
    await tracker.moveToSprint(input.sprint, input.issues);
    return { sprint: input.sprint, moved: input.issues };
  },
});

export const moveToBacklog = pmTool({
  name: 'move_to_backlog',
  toolset: 'agile',
  scope: (input) => ({ issues: input.issues }),
  route: { method: 'POST', path: '/api/pm/backlog/issues' },
  title: 'Move issues to the backlog',
  description: 'Moves up to 50 issues out of their sprints into the backlog.',
  output: z.strictObject({ moved: z.array(z.string()) }),
  input: { issues: keys },
  write: true,
  idempotent: true,
  async run(tracker, input) {
    await tracker.moveToBacklog(input.issues);
    return { moved: input.issues };
  },
});
