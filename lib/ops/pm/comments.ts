import { z } from 'zod';
import { commentOutput, trackerPage } from './outputs.ts';
import { issueKey, markdownText, pageOutput, pmCursor, pmLimit, pmTool } from './tools.ts';

const commentId = z.string().trim().min(1, 'must not be empty').max(100);

export const listComments = pmTool({
  name: 'list_comments',
  toolset: 'comments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}/comments' },
  title: 'List comments',
  description: 'An issue\'s comments, oldest first, as Markdown (long ones truncated with a marker), a page at a time.',
  output: trackerPage(commentOutput),
  input: { key: issueKey, limit: pmLimit, cursor: pmCursor },
  target: (input) => `issue:${input.key}`,
  async run(tracker, input) {
    const page = await tracker.listComments(input.key, input);
    return pageOutput(page);
  },
});

export const addComment = pmTool({
  name: 'add_comment',
  toolset: 'comments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/comments', status: () => 201 },
  title: 'Add a comment',
  description: 'Adds a comment (Markdown, converted to the tracker\'s format) to an issue. Returns the comment.',
  output: commentOutput,
  input: { key: issueKey, body: markdownText('the comment') },
  write: true,
  target: (input) => `issue:${input.key}`,
  run: (tracker, input) => tracker.addComment(input.key, input.body),
});

export const editComment = pmTool({
  name: 'edit_comment',
  toolset: 'comments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'PATCH', path: '/api/pm/issues/{key}/comments/{comment_id}' },
  title: 'Edit a comment',
  description: 'Replaces the text of one of an issue\'s comments (Markdown).',
  output: commentOutput,
  input: { key: issueKey, comment_id: commentId, body: markdownText('the new text') },
  write: true,
  idempotent: true,
  target: (input) => `issue:${input.key} comment:${input.comment_id}`,
  run: (tracker, input) => tracker.editComment(input.key, input.comment_id, input.body),
});
