import { z } from 'zod';
import { linkTypeOutput, trackerItems } from './outputs.ts';
import { issueKey, markdownText, pmTool } from './tools.ts';

export const listLinkTypes = pmTool({
  name: 'list_link_types',
  toolset: 'links',
  scope: () => 'tracker',
  route: { method: 'GET', path: '/api/pm/link_types' },
  title: 'List link types',
  description: 'The kinds of links between issues (name, how they read outward and inward, e.g. "blocks" / "is blocked by").',
  output: trackerItems(linkTypeOutput),
  input: {},
  run: async (tracker) => ({ items: await tracker.listLinkTypes() }),
});

export const linkIssues = pmTool({
  name: 'link_issues',
  toolset: 'links',
  scope: (input) => ({ issues: [{ key: input.from, field: 'from' }, { key: input.to, field: 'to' }] }),
  route: { method: 'POST', path: '/api/pm/links', status: () => 201 },
  title: 'Link two issues',
  description: 'Links two issues with a link type name: "from <type outward> to", e.g. type Blocks, from A, to B reads "A blocks B". Optional Markdown comment.',
  output: z.strictObject({ linked: z.literal(true), type: z.string(), from: z.string(), to: z.string() }),
  input: { type: z.string().trim().min(1).max(100), from: issueKey, to: issueKey, comment: markdownText('a comment').optional() },
  write: true,
  target: (input) => `issue:${input.from} issue:${input.to}`,
  async run(tracker, input) {
    await tracker.linkIssues(input);
    return { linked: true, type: input.type, from: input.from, to: input.to };
  },
});

export const addRemoteLink = pmTool({
  name: 'add_remote_link',
  toolset: 'links',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/remote_links', status: () => 201 },
  title: 'Add a web link to an issue',
  description: 'Adds a link to a web page (url, title, optional summary) to an issue.',
  output: z.strictObject({ id: z.string() }),
  input: {
    key: issueKey,
    url: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).max(2000),
    title: z.string().trim().min(1).max(255),
    summary: z.string().trim().max(1000).optional(),
  },
  write: true,
  target: (input) => `issue:${input.key}`,
  run: (tracker, input) => tracker.addRemoteLink(input.key, input),
});

export const setParent = pmTool({
  name: 'set_parent',
  toolset: 'links',
  scope: (input) => ({ issues: [input.key, { key: input.parent ?? undefined, field: 'parent' }] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/parent' },
  title: 'Set an issue\'s parent',
  description: 'Makes parent (an issue key, e.g. an epic) the parent of the issue, or removes the parent with parent null.',
  output: z.strictObject({ key: z.string(), parent: z.string().nullable() }),
  input: { key: issueKey, parent: issueKey.nullable() },
  write: true,
  idempotent: true,
  target: (input) => `issue:${input.key}`,
  async run(tracker, input) {
    await tracker.setParent(input.key, input.parent);
    return { key: input.key, parent: input.parent };
  },
});
