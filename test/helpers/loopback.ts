import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// The fakes' HTTP servers: on 127.0.0.1, a free port, stopped with their open connections.

export async function serveOnLoopback(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export async function stopServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** What jsonBody answers for a body that is not JSON. */
export const NOT_JSON = Symbol('not JSON');

/** A request's JSON body: undefined when empty, NOT_JSON when it does not parse. */
export async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return NOT_JSON;
  }
}

/** What the multipart bodies parse to in readBody (their parts are in `form`). */
export const MULTIPART = Symbol('multipart/form-data');

/** A request's body: JSON (undefined when empty, NOT_JSON when it does not parse), or a multipart form. */
export async function readBody(req: IncomingMessage): Promise<{ body: unknown; form: FormData | null; bytes: Buffer }> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  const type = req.headers['content-type'] ?? '';
  if (/^multipart\/form-data/i.test(type)) {
    try {
      return { body: MULTIPART, form: await new Response(bytes, { headers: { 'content-type': type } }).formData(), bytes };
    } catch {
      return { body: NOT_JSON, form: null, bytes };
    }
  }
  const text = bytes.toString();
  if (!text) return { body: undefined, form: null, bytes };
  try {
    return { body: JSON.parse(text), form: null, bytes };
  } catch {
    return { body: /^application\/octet-stream/i.test(type) ? bytes : NOT_JSON, form: null, bytes };
  }
}

/** A multipart form's files under `name`. */
export async function formFiles(form: FormData, name: string): Promise<{ name: string; type: string; data: Buffer }[]> {
  const files: { name: string; type: string; data: Buffer }[] = [];
  for (const part of form.getAll(name)) {
    if (typeof part === 'string') continue;
    files.push({ name: part.name, type: part.type, data: Buffer.from(await part.arrayBuffer()) });
  }
  return files;
}
