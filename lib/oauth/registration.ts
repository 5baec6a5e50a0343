import { randomBytes } from 'node:crypto';
import { sha256Hex } from './adapter.ts';

// What a Dynamic Client Registration becomes before the library sees it (no oidc-provider import:
// the HTTP face uses these without loading the authorization server).

/** Canonical JSON (sorted keys): identical registrations get the same fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export const isPublicRegistration = (body: Record<string, unknown>) => body.token_endpoint_auth_method === 'none';

/** A registration's client id: identical public registrations share one (Claude re-registers often). */
export function registrationClientId(body: Record<string, unknown>): string {
  return isPublicRegistration(body) ? `dcr-${sha256Hex(canonical(body)).slice(0, 32)}` : `dcr-${randomBytes(16).toString('hex')}`;
}

const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?\//i;

/**
 * RFC 7591 lets the server adjust what it registers. A client whose redirects are loopback http or
 * a private scheme (`cursor://…`) is a native app (RFC 8252): it gets any loopback port, and its
 * scheme is accepted. Everything else stays as asked.
 */
export function normaliseRegistration(body: Record<string, unknown>): Record<string, unknown> {
  const uris = Array.isArray(body.redirect_uris) ? body.redirect_uris.filter((u): u is string => typeof u === 'string') : [];
  const native = uris.length > 0 && uris.every((uri) => LOOPBACK.test(uri) || !/^https?:/i.test(uri));
  if (native && body.application_type === undefined) return { ...body, application_type: 'native' };
  return body;
}


const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * Where an authorization response may be sent: https, a loopback http callback of a native app, or
 * an app's private scheme (`cursor://…`); never plain http elsewhere (the code would cross the
 * network in the clear), never a fragment, never a scheme a browser runs (javascript:, data:).
 */
export function acceptableRedirectUri(value: string): boolean {
  const url = URL.parse(value);
  if (!url || url.hash || /^(javascript|data|file|vbscript|blob):$/i.test(url.protocol)) return false;
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname);
  return true;
}

export const REDIRECT_URI_RULE = 'must be an https URL, a loopback http URL (127.0.0.1, [::1], localhost) or an app scheme such as cursor://, with no fragment';
