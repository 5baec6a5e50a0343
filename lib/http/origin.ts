import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { OpError } from '../errors.ts';
import { errorReply, writeReply, type Reply } from './respond.ts';

// DNS rebinding: a page on evil.example whose name is made to resolve to this machine can send
// requests here from the user's browser, with Host and Origin naming evil.example. So /mcp and
// /api answer only requests whose Host is this deployment's (an IP literal, a loopback name, the
// public URL's host or an allowed origin's) and whose Origin, if any, is one of its own origins
// or one an operator allowed (MANDATE_ALLOWED_ORIGINS). Requests without Origin (every non-browser
// client) pass.

export interface OriginPolicy {
  /** Origins allowed besides the server's own loopback and public origins (scheme://host[:port]). */
  allowedOrigins: ReadonlySet<string>;
  /** Host names (lower case, no port) requests may name. */
  allowedHosts: ReadonlySet<string>;
  publicOrigin: string;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export function originPolicy(publicUrl: string, allowedOrigins: readonly string[], bindHost?: string): OriginPolicy {
  const publicOrigin = new URL(publicUrl).origin;
  const origins = new Set(allowedOrigins.map((o) => new URL(o).origin));
  const hosts = new Set([...LOOPBACK_NAMES, ...[publicOrigin, ...origins].map((o) => new URL(o).hostname.toLowerCase())]);
  if (bindHost) hosts.add(hostnameOf(bindHost));
  return { allowedOrigins: origins, allowedHosts: hosts, publicOrigin };
}

function hostnameOf(host: string): string {
  const bracketed = /^(\[[^\]]*\])(:\d+)?$/.exec(host);
  if (bracketed) return bracketed[1]!.toLowerCase();
  return host.replace(/:\d+$/, '').replace(/\.$/, '').toLowerCase();
}

/** Whether a Host header names this deployment (names can be rebound; IP literals cannot). */
export function hostAllowed(policy: OriginPolicy, host: string | undefined): boolean {
  if (host === undefined) return true;
  const name = hostnameOf(host.trim());
  if (policy.allowedHosts.has(name)) return true;
  return isIP(name.replace(/^\[|\]$/g, '')) !== 0;
}

/** Whether a browser Origin may call: this server's own origins (public, loopback on its port), or allowed ones. */
export function originAllowed(policy: OriginPolicy, origin: string, localPort: number | undefined): boolean {
  if (origin === policy.publicOrigin || policy.allowedOrigins.has(origin)) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.origin !== origin) return false;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return LOOPBACK_NAMES.has(url.hostname.toLowerCase()) && port === localPort;
}

const ALLOW_HEADERS = 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id, x-mcp-token, x-mcp-toolsets, x-request-id, x-mandate-input';
const EXPOSE_HEADERS = 'mcp-session-id, mcp-protocol-version, www-authenticate, retry-after';

/**
 * Refuses (403) a request to /mcp or /api from a foreign Host or Origin, answers CORS preflights,
 * and marks responses to an allowed browser origin. Returns true when the request was answered.
 */
export function guardOrigin(policy: OriginPolicy, req: IncomingMessage, res: ServerResponse, refusal: (error: OpError) => Reply = errorReply): boolean {
  if (!hostAllowed(policy, req.headers.host)) {
    writeReply(res, refusal(new OpError('forbidden', 'this Host is not this server\'s (DNS rebinding protection); reach it by its own name', { field: 'Host' })));
    return true;
  }
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (!originAllowed(policy, origin, req.socket.localPort)) {
    writeReply(res, refusal(new OpError('forbidden', `requests from the origin ${origin.slice(0, 100)} are not allowed here; an operator can allow it with MANDATE_ALLOWED_ORIGINS`, { field: 'Origin' })));
    return true;
  }
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'Origin');
  res.setHeader('access-control-expose-headers', EXPOSE_HEADERS);
  if (req.method === 'OPTIONS') {
    res.writeHead(204, {
      'access-control-allow-methods': 'GET, POST, PATCH, DELETE, OPTIONS',
      'access-control-allow-headers': ALLOW_HEADERS,
      'access-control-max-age': '600',
      'content-length': 0,
    });
    res.end();
    return true;
  }
  return false;
}
