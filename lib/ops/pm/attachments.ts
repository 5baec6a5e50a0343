import { z } from 'zod';
import { OpError } from '../../errors.ts';
import { accountOutput, trackerItems } from './outputs.ts';
import { issueKey, pmTool } from './tools.ts';

// An issue's attachments on every tracker: listed, downloaded as text or base64 under a size cap,
// uploaded from base64, deleted. An attachment is always named with its issue, so the binding
// guard checks the issue's project and an id from elsewhere is not found.

const MEBIBYTE = 1024 * 1024;
/** The largest download: a tool result carries it whole. */
export const MAX_DOWNLOAD_BYTES = 10 * MEBIBYTE;
/** The largest upload: its base64 fits in a request body (1 MiB) with room for the rest. */
export const MAX_UPLOAD_BYTES = 700 * 1024;
const MAX_UPLOAD_BASE64 = Math.ceil(MAX_UPLOAD_BYTES / 3) * 4;

const attachmentId = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').regex(/^[A-Za-z0-9_-]+$/, 'must be an attachment id from list_attachments');

export const attachmentOutput = z.strictObject({
  id: z.string(),
  filename: z.string(),
  mime_type: z.string().nullable(),
  size: z.number().int().nullable().describe('bytes'),
  created: z.string().nullable(),
  author: accountOutput.nullable(),
});

const TEXT_TYPES = /^(text\/|application\/(json|xml|yaml|x-yaml|javascript|x-sh|sql|csv|x-ndjson)\b|[^;]*\+(json|xml)\b)/i;

/** The bytes as UTF-8 text, or null when they are not (or hold NUL, a binary file's mark). */
function utf8(data: Buffer): string | null {
  if (data.includes(0)) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return null;
  }
}

export const listAttachments = pmTool({
  name: 'list_attachments',
  toolset: 'attachments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}/attachments' },
  title: 'List attachments',
  description: 'The files attached to an issue: id, filename, MIME type, size in bytes, when and by whom. get_attachment downloads one.',
  output: trackerItems(attachmentOutput),
  input: { key: issueKey },
  target: (input) => `issue:${input.key}`,
  async run(tracker, input) {
    return { items: await tracker.listAttachments(input.key) };
  },
});

export const getAttachment = pmTool({
  name: 'get_attachment',
  toolset: 'attachments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'GET', path: '/api/pm/issues/{key}/attachments/{attachment_id}' },
  title: 'Download an attachment',
  description:
    `Downloads one of an issue's attachments. encoding "auto" (the default) returns text files (text/*, JSON, XML, YAML, CSV that are UTF-8) as text and anything else as base64; "text" or "base64" asks for one. ` +
    `A file larger than max_bytes (default 1 MiB, at most ${MAX_DOWNLOAD_BYTES / MEBIBYTE} MiB) is refused before it is downloaded.`,
  output: attachmentOutput.extend({ encoding: z.enum(['text', 'base64']), content: z.string() }),
  input: {
    key: issueKey,
    attachment_id: attachmentId,
    encoding: z.enum(['auto', 'text', 'base64']).default('auto'),
    max_bytes: z.number().int('must be a whole number').min(1, 'must be at least 1').max(MAX_DOWNLOAD_BYTES, `must be at most ${MAX_DOWNLOAD_BYTES}`).default(MEBIBYTE),
  },
  target: (input) => `issue:${input.key} attachment:${input.attachment_id}`,
  async run(tracker, input) {
    const { attachment, data } = await tracker.downloadAttachment(input.key, input.attachment_id, input.max_bytes);
    const wantsText = input.encoding === 'text' || (input.encoding === 'auto' && TEXT_TYPES.test(attachment.mime_type ?? ''));
    const text = wantsText ? utf8(data) : null;
    if (input.encoding === 'text' && text === null) {
      throw new OpError('invalid_input', `attachment ${attachment.id} (${attachment.filename}) is not UTF-8 text; ask for encoding "base64"`, { field: 'encoding' });
    }
    return { ...attachment, size: data.length, ...(text !== null ? { encoding: 'text' as const, content: text } : { encoding: 'base64' as const, content: data.toString('base64') }) };
  },
});

const filename = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(255, 'must be at most 255 characters')
  .refine((name) => !/[\u0000-\u001f\u007f/\\]/.test(name), 'must be a file name: no "/", "\\" or control characters')
  .refine((name) => name !== '.' && name !== '..', 'must be a file name, not "." or ".."');

const base64 = z
  .string()
  .min(1, 'must not be empty')
  .max(MAX_UPLOAD_BASE64, `must be at most ${MAX_UPLOAD_BASE64} characters (${MAX_UPLOAD_BYTES} bytes once decoded)`)
  .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be base64 (A-Z, a-z, 0-9, "+", "/", padded with "=" to a multiple of 4; no line breaks)')
  .refine((text) => (text.length / 4) * 3 - (text.match(/=+$/)?.[0].length ?? 0) <= MAX_UPLOAD_BYTES, `must decode to at most ${MAX_UPLOAD_BYTES} bytes`);

export const addAttachment = pmTool({
  name: 'add_attachment',
  toolset: 'attachments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'POST', path: '/api/pm/issues/{key}/attachments', status: () => 201 },
  title: 'Attach a file',
  description: `Attaches a file to an issue from its bytes in base64 (at most ${MAX_UPLOAD_BYTES} bytes), with a file name and optional MIME type (default application/octet-stream). Returns the attachment.`,
  output: attachmentOutput,
  input: {
    key: issueKey,
    filename,
    content_base64: base64,
    mime_type: z.string().trim().max(100).regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type such as text/plain').optional(),
  },
  write: true,
  // The file's bytes are the user's data, not an audit detail.
  secretInputs: ['content_base64'],
  target: (input) => `issue:${input.key}`,
  run: (tracker, input) =>
    tracker.uploadAttachment(input.key, { filename: input.filename, mimeType: input.mime_type ?? 'application/octet-stream', data: Buffer.from(input.content_base64, 'base64') }),
});

export const deleteAttachment = pmTool({
  name: 'delete_attachment',
  toolset: 'attachments',
  scope: (input) => ({ issues: [input.key] }),
  route: { method: 'DELETE', path: '/api/pm/issues/{key}/attachments/{attachment_id}' },
  title: 'Delete an attachment',
  description: 'Deletes one of an issue\'s attachments for good. Offered only where the deployment enables deleting.',
  output: z.strictObject({ key: z.string(), attachment_id: z.string(), deleted: z.literal(true) }),
  input: { key: issueKey, attachment_id: attachmentId },
  write: true,
  destructive: true,
  target: (input) => `issue:${input.key} attachment:${input.attachment_id}`,
  async run(tracker, input, ctx) {
    if (!ctx.pm.settings.allowDelete) throw new OpError('forbidden', 'permission denied: deleting is disabled in this deployment (MANDATE_PM_ALLOW_DELETE)');
    await tracker.deleteAttachment(input.key, input.attachment_id);
    return { key: input.key, attachment_id: input.attachment_id, deleted: true as const };
  },
});
