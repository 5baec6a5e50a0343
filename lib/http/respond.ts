import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline, Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { OpError } from '../errors.ts';

export const WWW_AUTHENTICATE = 'Bearer realm="mandate", Basic realm="mandate", charset="UTF-8"';

/** A response decided before it is written: a speculative request's answer waits for its verdict. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Sent instead of `body` as it comes (an SSE response): no content-length, ended by the stream. */
  stream?: ReadableStream<Uint8Array>;
}

export function jsonReply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) };
}

/** Requests whose body was refused unread: their connection closes after the answer. */
const unreadBodies = new WeakSet<IncomingMessage>();

export function writeReply(res: ServerResponse, reply: Reply): void {
  if (reply.stream) return streamReply(res, reply.status, reply.headers, reply.stream);
  const close = unreadBodies.has(res.req);
  res.writeHead(reply.status, { ...reply.headers, 'content-length': Buffer.byteLength(reply.body), ...(close ? { connection: 'close' } : {}) });
  res.end(reply.body);
  // The rest of the body is never read (it could be any size): the socket goes once answered.
  if (close) res.once('finish', () => res.req.socket.destroy());
}

function streamReply(res: ServerResponse, status: number, headers: Record<string, string>, stream: ReadableStream<Uint8Array>): void {
  const body = Readable.fromWeb(stream as NodeReadableStream<Uint8Array>);
  // A client that went away (even before this) cancels the stream; the call itself runs to its end (and its audit event).
  if (res.destroyed) return void body.destroy();
  res.writeHead(status, headers);
  res.flushHeaders();
  pipeline(body, res, () => undefined);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  writeReply(res, jsonReply(status, body, headers));
}

/** A step of a browser flow (OAuth): 302, never cached, no referrer carried onward. */
export function sendRedirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', 'content-length': 0 });
  res.end();
}

/** `{error: {code, message, field?}}` with the status of its code; 401s say how to authenticate. */
export function errorReply(error: OpError, headers: Record<string, string> = {}, challenge = WWW_AUTHENTICATE): Reply {
  const extra: Record<string, string> = { ...headers };
  if (error.code === 'unauthenticated') extra['www-authenticate'] = challenge;
  if (error.retryAfterSeconds !== undefined) extra['retry-after'] = String(error.retryAfterSeconds);
  return jsonReply(error.status, { error: error.toBody() }, extra);
}

export function sendError(res: ServerResponse, error: OpError, headers: Record<string, string> = {}): void {
  writeReply(res, errorReply(error, headers));
}

/** A body that is not JSON at all (JSON-RPC's parse error on /mcp). */
export class NotJsonError extends OpError {
  constructor() {
    super('invalid_input', 'the request body is not valid JSON', { field: '(body)' });
  }
}

const MAX_BODY_BYTES = 1024 * 1024;

// Plain events rather than `for await`: the async iterator showed up in the hot path's profile.
function readBody(req: IncomingMessage): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      unreadBodies.add(req);
      req.pause();
      reject(new OpError('too_large', `the request body is larger than ${MAX_BODY_BYTES} bytes`, { field: '(body)' }));
    };
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        tooLarge();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks));
    req.on('error', reject);
  });
}

/** The JSON object in a request body ({} when empty); a clear 400 for anything else. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks = await readBody(req);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new OpError('invalid_input', 'send the body as JSON (content-type: application/json)', { field: '(body)' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NotJsonError();
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new OpError('invalid_input', 'the request body must be a JSON object', { field: '(body)' });
  }
  return parsed as Record<string, unknown>;
}

/** An HTML form's fields (application/x-www-form-urlencoded); repeated names keep every value. */
export async function readFormBody(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/x-www-form-urlencoded\b/i.test(type)) {
    throw new OpError('invalid_input', 'send the form as application/x-www-form-urlencoded', { field: '(body)' });
  }
  return new URLSearchParams(Buffer.concat(await readBody(req)).toString('utf8'));
}
