import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { forbiddenLiteralHost, guardedLookup, type NetworkPolicy } from '../pm/net-guard.ts';

export class ForbiddenUpstreamError extends Error {}

/**
 * A `fetch` for MCP servers' Streamable HTTP endpoints: every connection's address is checked by
 * the same SSRF guard as trackers' (the address the name resolves to, or the IP literal), no
 * redirect is followed, and the response body streams (server-sent events stay open).
 */
export function guardedStreamFetch(policy: NetworkPolicy, maxBodyBytes: number) {
  const lookup = guardedLookup(policy) as unknown as http.AgentOptions['lookup'];
  const agents = { 'http:': new http.Agent({ keepAlive: true, lookup }), 'https:': new https.Agent({ keepAlive: true, lookup }) };
  const fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) throw new ForbiddenUpstreamError(`${url.protocol} is not allowed for MCP servers here (https only)`);
    const literal = forbiddenLiteralHost(url, policy);
    if (literal) throw new ForbiddenUpstreamError(`${literal.reason}, which this deployment does not allow MCP servers on`);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === 'string' ? init.body : Buffer.from(await new Response(init.body).arrayBuffer());
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    const module = url.protocol === 'https:' ? https : http;
    return new Promise<Response>((resolve, reject) => {
      const request = module.request(url, { method: init.method ?? 'GET', headers, agent: agents[url.protocol as 'http:' | 'https:'], signal: init.signal ?? undefined }, (res) => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
          else if (value !== undefined) responseHeaders.set(name, value);
        }
        const status = res.statusCode ?? 502;
        const noBody = status === 204 || status === 304 || init.method === 'HEAD';
        if (noBody) {
          res.resume();
          return resolve(new Response(null, { status, headers: responseHeaders }));
        }
        // Server-sent events stream; anything else is one message, read whole (web streams cost more).
        if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
          return resolve(new Response(Readable.toWeb(res) as ReadableStream, { status, headers: responseHeaders }));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBodyBytes) {
            res.destroy();
            return reject(new Error(`the server's answer is over ${maxBodyBytes} bytes`));
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status, headers: responseHeaders })));
        res.on('error', reject);
      });
      request.on('error', (error) => reject(error));
      request.end(body);
    });
  };
  return { fetch, close: () => Object.values(agents).forEach((agent) => agent.destroy()) };
}
