import { z } from 'zod';
import { accountOutput, fieldOutput, namedOutput, projectOutput, trackerItems, trackerPage } from './outputs.ts';
import { pageOutput, pmCursor, pmLimit, pmTool, projectRef } from './tools.ts';

export const listProjects = pmTool({
  name: 'list_projects',
  toolset: 'metadata',
  route: { method: 'GET', path: '/api/pm/projects' },
  title: 'List projects',
  description: 'Projects your tracker account can see (key, name), optionally filtered by query, a page at a time.',
  output: trackerPage(projectOutput),
  input: { query: z.string().trim().min(1).max(200).optional(), limit: pmLimit, cursor: pmCursor },
  async run(tracker, input) {
    const page = await tracker.listProjects(input);
    return pageOutput(page);
  },
});

export const getProject = pmTool({
  name: 'get_project',
  toolset: 'metadata',
  scope: (input) => ({ projects: [input.project] }),
  route: { method: 'GET', path: '/api/pm/projects/{project}' },
  title: 'Get a project',
  description: 'One project by key (Redmine: identifier): name, description, lead and issue types.',
  output: projectOutput,
  input: { project: projectRef },
  target: (input) => `project:${input.project}`,
  run: (tracker, input) => tracker.getProject(input.project),
});

export const listIssueTypes = pmTool({
  name: 'list_issue_types',
  toolset: 'metadata',
  scope: (input) => ({ projects: [input.project] }),
  route: { method: 'GET', path: '/api/pm/projects/{project}/issue_types' },
  title: 'List issue types',
  description: 'The issue types you can create in a project (Redmine: its trackers).',
  output: trackerItems(namedOutput),
  input: { project: projectRef },
  target: (input) => `project:${input.project}`,
  run: async (tracker, input) => ({ items: await tracker.listIssueTypes(input.project) }),
});

export const getCreateFields = pmTool({
  name: 'get_create_fields',
  toolset: 'metadata',
  scope: (input) => ({ projects: [input.project] }),
  route: { method: 'GET', path: '/api/pm/projects/{project}/create_fields' },
  title: 'Get the fields for creating an issue',
  description: 'The fields an issue of a type (name or id) takes in a project: id, name, type, whether required, allowed values. Use the ids in create_issue\'s fields.',
  output: trackerItems(fieldOutput),
  input: { project: projectRef, issue_type: z.string().trim().min(1).max(100) },
  target: (input) => `project:${input.project}`,
  run: async (tracker, input) => ({ items: await tracker.createFields(input.project, input.issue_type) }),
});

export const searchFields = pmTool({
  name: 'search_fields',
  toolset: 'metadata',
  scope: () => 'tracker',
  route: { method: 'GET', path: '/api/pm/fields' },
  title: 'Search fields',
  description: 'The tracker\'s fields (id, name, type, custom or not) whose name or id contains query; all fields without one.',
  output: trackerItems(fieldOutput),
  input: { query: z.string().trim().min(1).max(200).optional() },
  run: async (tracker, input) => ({ items: await tracker.searchFields(input.query) }),
});

export const listStatuses = pmTool({
  name: 'list_statuses',
  toolset: 'metadata',
  scope: (input) => (input.project === undefined ? 'tracker' : { projects: [input.project] }),
  route: { method: 'GET', path: '/api/pm/statuses' },
  title: 'List statuses',
  description: 'Issue statuses, of one project when project is given, otherwise all.',
  output: trackerItems(namedOutput),
  input: { project: projectRef.optional() },
  run: async (tracker, input) => ({ items: await tracker.listStatuses(input.project) }),
});

export const listPriorities = pmTool({
  name: 'list_priorities',
  toolset: 'metadata',
  scope: () => 'tracker',
  route: { method: 'GET', path: '/api/pm/priorities' },
  title: 'List priorities',
  description: 'The priorities issues can have.',
  output: trackerItems(namedOutput),
  input: {},
  run: async (tracker) => ({ items: await tracker.listPriorities() }),
});

export const searchUsers = pmTool({
  name: 'search_users',
  toolset: 'metadata',
  scope: () => 'tracker',
  route: { method: 'GET', path: '/api/pm/users' },
  title: 'Search users',
  description: 'Tracker users matching a name or email, with the ids assign_issue and create_issue accept.',
  output: trackerItems(accountOutput),
  input: { query: z.string().trim().min(1, 'must not be empty').max(200), limit: pmLimit },
  run: async (tracker, input) => ({ items: await tracker.searchUsers(input.query, input.limit) }),
});
