import type { UpstreamHttp } from './http.ts';

const NULL_BODY = new Set([101, 204, 205, 304]);
const KEPT_HEADERS = ['cache-control', 'expires', 'content-type', 'content-length'];

/**
 * A `fetch` for GETs on URLs that came from outside (an OAuth client's metadata document): it goes
 * through the upstream client, so the same SSRF guard as for trackers applies (the address every
 * connection resolves to is checked), within the caller's abort signal.
 */
export function guardedFetch(http: UpstreamHttp) {
  return async (url: string | URL, init: RequestInit = {}): Promise<Response> => {
    if ((init.method ?? 'GET').toUpperCase() !== 'GET') throw new TypeError('only GET requests leave through this client');
    const sent = http.send({ method: 'GET', url: String(url), headers: { accept: 'application/json' } });
    const signal = init.signal;
    const response = await (signal
      ? Promise.race([sent, new Promise<never>((_resolve, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        })])
      : sent);
    const headers = new Headers();
    for (const name of KEPT_HEADERS) {
      const value = response.headers[name];
      if (typeof value === 'string') headers.set(name, value);
    }
    headers.delete('content-length');
    const text = response.body === undefined ? '' : typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
    return new Response(NULL_BODY.has(response.status) ? null : text, { status: response.status, headers });
  };
}
