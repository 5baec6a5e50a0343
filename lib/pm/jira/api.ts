import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamHttp, UpstreamMethod, QueryValue } from '../http.ts';
import { TrackerError } from '../errors.ts';

export type JiraFlavor = 'cloud' | 'dc';

export interface JiraEndpoint {
  flavor: JiraFlavor;
  /** The site users see (issue URLs): https://acme.atlassian.net or the DC base URL. */
  siteUrl: string;
  /** Where the REST API is served: the site, or api.atlassian.com/ex/jira/<cloudId> over OAuth. */
  apiRoot: string;
  /** The Authorization header value, fetched per request (OAuth tokens refresh). */
  authorization(): Promise<string>;
}

/** Jira's error body: { errorMessages: [...], errors: { field: message } }. */
function jiraError(status: number, body: unknown): TrackerError {
  if (body && typeof body === 'object') {
    const b = body as { errorMessages?: unknown; errors?: unknown; message?: unknown };
    const messages = Array.isArray(b.errorMessages) ? b.errorMessages.map(String) : typeof b.message === 'string' ? [b.message] : [];
    const errors = b.errors && typeof b.errors === 'object' ? Object.fromEntries(Object.entries(b.errors).map(([k, v]) => [k, String(v)])) : {};
    return new TrackerError(status, messages, errors);
  }
  return new TrackerError(status, typeof body === 'string' && body.length < 300 && !/<html/i.test(body) ? [body] : []);
}

/**
 * Jira answers a request whose credentials it refused as an anonymous one wherever anonymous
 * access is allowed: 200, with what anonymous users see (often an empty search), saying so only in
 * these headers. Every request here carries credentials, so that is the refusal it is.
 */
function answeredAnonymously(headers: IncomingHttpHeaders): boolean {
  const reason = String(headers['x-seraph-loginreason'] ?? '').toUpperCase();
  return /AUTHENTICATED_FAILED|AUTHENTICATION_DENIED/.test(reason) || String(headers['x-ausername'] ?? '').toLowerCase() === 'anonymous';
}

interface CallOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  /** An upload's body, sent as is. */
  raw?: { contentType: string; data: Buffer };
  /** A download: the answer's bytes, at most maxBodyBytes. */
  binary?: boolean;
  maxBodyBytes?: number;
  /** A URL Jira gave (Data Center's attachment content), instead of a path under the API root. */
  absoluteUrl?: string;
}

/** REST calls to one Jira, with its version's prefix (v3 on Cloud, v2 on Data Center). */
export class JiraApi {
  readonly endpoint: JiraEndpoint;
  private readonly http: UpstreamHttp;

  constructor(http: UpstreamHttp, endpoint: JiraEndpoint) {
    this.http = http;
    this.endpoint = endpoint;
  }

  get platform(): string {
    return `/rest/api/${this.endpoint.flavor === 'cloud' ? 3 : 2}`;
  }

  async call<T>(method: UpstreamMethod, path: string, options: CallOptions = {}): Promise<T> {
    const response = await this.http.send({
      method,
      url: options.absoluteUrl ?? `${this.endpoint.apiRoot}${path}`,
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.raw ? { raw: options.raw } : {}),
      ...(options.binary ? { binary: true, ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}) } : {}),
      headers: { ...(options.binary ? { accept: '*/*' } : {}), authorization: await this.endpoint.authorization(), 'x-atlassian-token': 'no-check' },
    });
    if (response.status >= 400) throw jiraError(response.status, response.body);
    if (answeredAnonymously(response.headers)) {
      throw new TrackerError(401, ['Jira did not accept the credentials and answered as for an anonymous user (what anonymous users may see, often nothing)']);
    }
    return response.body as T;
  }

  /** The platform API (`/rest/api/3` or `/rest/api/2`). */
  api<T>(method: UpstreamMethod, path: string, options?: CallOptions): Promise<T> {
    return this.call<T>(method, `${this.platform}${path}`, options);
  }

  agile<T>(method: UpstreamMethod, path: string, options?: { query?: Record<string, QueryValue>; body?: unknown }): Promise<T> {
    return this.call<T>(method, `/rest/agile/1.0${path}`, options);
  }
}
