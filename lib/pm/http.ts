import http from 'node:http';
import https from 'node:https';
import { setTimeout as delay } from 'node:timers/promises';
import { OpError } from '../errors.ts';
import { BlockedAddressError, forbiddenLiteralHost, guardedLookup, type NetworkPolicy } from './net-guard.ts';
import { clientReport, SILENT_REPORT } from '../report.ts';

// The one way PM code reaches a tracker: every request has a per-attempt timeout and the call an
// overall deadline; 429 and 503 are retried after their Retry-After (0 included) a capped number of
// times; other 5xx only for idempotent methods; redirects are followed only within the same origin;
// every socket's address is checked against the network policy.

export type UpstreamMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export type QueryValue = string | number | boolean | undefined | null | readonly (string | number)[];

export interface UpstreamRequest {
  method: UpstreamMethod;
  url: string;
  query?: Record<string, QueryValue>;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is instead (uploads: multipart or octet-stream). */
  raw?: { contentType: string; data: Buffer };
  /** The answer's bytes are returned as they are (downloads), not parsed. */
  binary?: boolean;
  /** The largest answer read for this request (at most the client's). */
  maxBodyBytes?: number;
}

export interface UpstreamResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the text when the body is not JSON (undefined when empty); a Buffer for a binary request. */
  body: unknown;
}

export interface HttpSettings {
  policy: NetworkPolicy;
  /** Each attempt. */
  timeoutMs: number;
  /** The whole call, retries and waits included. */
  deadlineMs: number;
  /** Retries after the first attempt. */
  maxRetries: number;
  /** The largest answer read (default 16 MiB). */
  maxBodyBytes?: number;
}

/** Why a call did not produce a response; the PM layer turns it into a tool error. */
export class UpstreamFailure extends Error {
  readonly kind: 'timeout' | 'network' | 'redirect' | 'rate_limited' | 'too_large';
  readonly retryAfterSeconds?: number;
  constructor(kind: UpstreamFailure['kind'], message: string, retryAfterSeconds?: number) {
    super(message);
    this.name = 'UpstreamFailure';
    this.kind = kind;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_REDIRECTS = 3;
const IDEMPOTENT = new Set<UpstreamMethod>(['GET', 'PUT', 'DELETE']);

/** One request as it goes out, attempt after attempt. */
interface Outgoing {
  method: UpstreamMethod;
  headers: Record<string, string>;
  payload: Buffer | undefined;
  contentType: string | undefined;
  binary: boolean;
  maxBodyBytes: number;
}

/** A reused socket reset before any answer: at most this many in a row are retried. */
const MAX_STALE_SOCKETS = 3;

class StaleSocket extends Error {
  readonly failure: UpstreamFailure;
  constructor(failure: UpstreamFailure) {
    super(failure.message);
    this.failure = failure;
  }
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

export function withQuery(url: string, query: Record<string, QueryValue> = {}): string {
  const target = new URL(url);
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) target.searchParams.append(key, String(item));
    else target.searchParams.set(key, String(value));
  }
  return target.toString();
}

/**
 * A path segment "." or ".." (however encoded) would move the request elsewhere on the tracker
 * once the URL is normalised: identifiers from input end up in paths, so such a URL is refused.
 */
function refuseDotSegments(url: string): void {
  const path = url.replace(/^[a-z]+:\/\/[^/]*/i, '').split(/[?#]/)[0] ?? '';
  for (const segment of path.split('/')) {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // Not percent-decodable: not a dot segment either.
    }
    if (decoded === '.' || decoded === '..') {
      throw new OpError('invalid_input', 'an identifier in this request is "." or "..", which would leave the tracker API path it belongs to');
    }
  }
}

export class UpstreamHttp {
  readonly settings: HttpSettings;
  private readonly sleep: (ms: number) => Promise<unknown>;
  private readonly agents: { 'http:': http.Agent; 'https:': https.Agent };

  constructor(settings: HttpSettings, options: { sleep?: (ms: number) => Promise<unknown> } = {}) {
    this.settings = settings;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
    const lookup = guardedLookup(settings.policy) as unknown as http.AgentOptions['lookup'];
    this.agents = {
      'http:': new http.Agent({ keepAlive: true, lookup }),
      'https:': new https.Agent({ keepAlive: true, lookup }),
    };
  }

  close(): void {
    this.agents['http:'].destroy();
    this.agents['https:'].destroy();
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    refuseDotSegments(request.url);
    const deadline = Date.now() + this.settings.deadlineMs;
    const url = withQuery(request.url, request.query);
    const outgoing: Outgoing = {
      method: request.method,
      headers: request.headers ?? {},
      payload: request.raw ? request.raw.data : request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body)),
      contentType: request.raw ? request.raw.contentType : request.body === undefined ? undefined : 'application/json',
      binary: request.binary ?? false,
      maxBodyBytes: Math.min(request.maxBodyBytes ?? Infinity, this.settings.maxBodyBytes ?? MAX_BODY_BYTES),
    };
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new UpstreamFailure('timeout', `no answer within ${this.settings.deadlineMs} ms`);
      const response = await this.follow(outgoing, url, Math.min(this.settings.timeoutMs, remaining));
      // A client that asked for progress sees each answer as it comes (the path only: a query may hold search terms).
      const report = clientReport();
      if (report !== SILENT_REPORT) report.progress(`the tracker answered ${request.method} ${new URL(url).pathname} with ${response.status}`);
      const wait = this.retryWait(request.method, response, attempt);
      if (wait === null) return response;
      const left = deadline - Date.now();
      if (attempt >= this.settings.maxRetries || wait > left) {
        if (response.status === 429) {
          const after = Math.ceil(wait / 1000);
          throw new UpstreamFailure('rate_limited', `the tracker is rate limiting; it asks to wait ${after} s`, after);
        }
        return response;
      }
      report.log('warning', `the tracker answered ${response.status}; retrying in ${wait} ms (retry ${attempt + 1} of ${this.settings.maxRetries})`, { status: response.status, retry_in_ms: wait });
      await this.sleep(wait);
    }
  }

  /** How long to wait before retrying this response, or null if it is final. */
  private retryWait(method: UpstreamMethod, response: UpstreamResponse, attempt: number): number | null {
    const backoff = 250 * 2 ** attempt;
    if (response.status === 429 || response.status === 503) return retryAfterMs(response.headers['retry-after']) ?? backoff;
    if (response.status >= 500 && IDEMPOTENT.has(method)) return backoff;
    return null;
  }

  /** One attempt, following same-origin redirects of reads. */
  private async follow(outgoing: Outgoing, url: string, timeoutMs: number) {
    let current = url;
    for (let hop = 0; ; hop++) {
      const response = await this.once(outgoing, current, timeoutMs);
      const location = response.headers.location;
      if (response.status < 300 || response.status >= 400 || response.status === 304 || !location) return response;
      const next = new URL(location, current);
      if (next.origin !== new URL(current).origin) {
        throw new UpstreamFailure('redirect', `the tracker redirected to another host (${next.host}); redirects are only followed within ${new URL(current).host}`);
      }
      if (outgoing.method !== 'GET' || hop >= MAX_REDIRECTS) return response;
      current = next.toString();
    }
  }

  /**
   * One request. A kept-alive socket the tracker closed as it went out (its idle timeout and our
   * reuse crossing) resets before any answer: a GET is sent again at once on another socket,
   * within the same time budget; anything else is a network failure, since whether the tracker
   * received it cannot be known (a PUT may add a comment, as Redmine's does).
   */
  private async once(outgoing: Outgoing, url: string, timeoutMs: number): Promise<UpstreamResponse> {
    const until = Date.now() + timeoutMs;
    for (let stale = 0; ; stale++) {
      try {
        return await this.exchange(outgoing, url, Math.max(1, until - Date.now()));
      } catch (error) {
        if (!(error instanceof StaleSocket)) throw error;
        if (outgoing.method !== 'GET' || stale >= MAX_STALE_SOCKETS || Date.now() >= until) throw error.failure;
      }
    }
  }

  private exchange(outgoing: Outgoing, url: string, timeoutMs: number): Promise<UpstreamResponse> {
    const { method, headers, payload, contentType } = outgoing;
    const target = new URL(url);
    const literal = forbiddenLiteralHost(target, this.settings.policy);
    if (literal) return Promise.reject(new BlockedAddressError(literal.host, literal.reason));
    const transport = target.protocol === 'https:' ? https : http;
    const agent = this.agents[target.protocol as 'http:' | 'https:'];
    if (!agent) return Promise.reject(new UpstreamFailure('network', `unsupported protocol ${target.protocol}`));
    let answered = false;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        target,
        {
          method,
          agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType ?? 'application/octet-stream', 'content-length': String(payload.length) } : {}),
            ...headers,
          },
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          let size = 0;
          let overflowed = false;
          // A download's cap is for the file; an error or redirect answer is read as any other.
          const limit = outgoing.binary && (res.statusCode ?? 0) >= 300 ? (this.settings.maxBodyBytes ?? MAX_BODY_BYTES) : outgoing.maxBodyBytes;
          const tooLarge = () => {
            // Settled here and the sockets dropped without an error event: nothing is left to throw.
            overflowed = true;
            clearTimeout(timer);
            reject(new UpstreamFailure('too_large', `the answer is larger than ${limit} bytes`));
            res.destroy();
            req.destroy();
          };
          if (Number(res.headers['content-length']) > limit) return tooLarge();
          res.on('data', (chunk: Buffer) => {
            if (overflowed) return;
            size += chunk.length;
            if (size > limit) return tooLarge();
            chunks.push(chunk);
          });
          res.on('end', () => {
            if (overflowed) return;
            clearTimeout(timer);
            if (outgoing.binary && (res.statusCode ?? 0) < 300) return resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = undefined;
            if (text.length) {
              try {
                body = JSON.parse(text);
              } catch {
                body = text;
              }
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
          res.on('error', (error) => {
            if (!overflowed) reject(error);
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new UpstreamFailure('timeout', `no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (error: Error) => {
        clearTimeout(timer);
        if (error instanceof UpstreamFailure || error instanceof BlockedAddressError) return reject(error);
        const code = (error as NodeJS.ErrnoException).code;
        const failure = new UpstreamFailure('network', `cannot reach ${target.host}${code ? ` (${code})` : ''}`);
        reject(req.reusedSocket && !answered && code === 'ECONNRESET' ? new StaleSocket(failure) : failure);
      });
      req.end(payload);
    });
  }
}
