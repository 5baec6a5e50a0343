import { OpError } from '../errors.ts';
import type { Attachment, AttachmentUpload } from './provider.ts';

// What every tracker's attachments share: finding one among an issue's (so an id of another
// issue's attachment, perhaps in a project the caller may not act on, is not found), the size
// cap checked before a download, and multipart bodies built by the platform's FormData.

/** The attachment with this id; anything else is not found. */
export function attachmentOf(attachments: readonly Attachment[], key: string, attachmentId: string): Attachment {
  const found = attachments.find((attachment) => attachment.id === attachmentId);
  if (!found) throw new OpError('not_found', `issue ${key} has no attachment ${attachmentId} (list_attachments shows its attachments)`, { field: 'attachment_id' });
  return found;
}

/** Refuses, before any download, an attachment larger than the caller's cap. */
export function refuseOversize(attachment: Attachment, maxBytes: number): void {
  if (attachment.size !== null && attachment.size > maxBytes) {
    throw new OpError('invalid_input', `attachment ${attachment.id} (${attachment.filename}) is ${attachment.size} bytes, more than max_bytes (${maxBytes}); raise max_bytes if the limit allows`, { field: 'max_bytes' });
  }
}

/** A multipart/form-data body: parts are JSON values (as application/json) or the file. */
export async function multipartBody(parts: Record<string, { json: unknown } | { file: AttachmentUpload }>): Promise<{ contentType: string; data: Buffer }> {
  const form = new FormData();
  for (const [name, part] of Object.entries(parts)) {
    if ('json' in part) form.append(name, new Blob([JSON.stringify(part.json)], { type: 'application/json' }));
    else form.append(name, new Blob([part.file.data], { type: part.file.mimeType }), part.file.filename);
  }
  const encoded = new Request('http://multipart.invalid/', { method: 'POST', body: form });
  return { contentType: encoded.headers.get('content-type')!, data: Buffer.from(await encoded.arrayBuffer()) };
}

