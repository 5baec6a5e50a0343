import { createHash, randomBytes } from 'node:crypto';
import { keepArtifact, recordSecret } from './db.ts';

// A browser's part of the OAuth flow in plain HTTP (cookies, redirects, forms), for the attack
// tests: every step can be bent the way an attacker would.

export class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, ...value] = pair!.split('=');
      this.cookies.set(name!.trim(), value.join('='));
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  drop(name: string): void {
    this.cookies.delete(name);
  }
}

export function pkce() {
  const verifier = recordSecret(randomBytes(32).toString('base64url'));
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface AuthorizeRequest {
  client_id: string;
  redirect_uri: string;
  resource?: string;
  scope?: string;
  code_challenge?: string;
  code_challenge_method?: string;
  state?: string;
}

export class Browser {
  readonly jar = new CookieJar();
  readonly base: string;
  private readonly from: Record<string, string>;

  /** `forwardedFor`: the client address the server sees (behind MANDATE_TRUST_PROXY). */
  constructor(base: string, forwardedFor?: string) {
    this.base = base;
    this.from = forwardedFor ? { 'x-forwarded-for': forwardedFor } : {};
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(new URL(path, this.base), { redirect: 'manual', headers: { cookie: this.jar.header(), ...this.from, ...headers } });
    this.jar.store(response);
    keepArtifact('http-response', await response.clone().text());
    return response;
  }

  async post(path: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Response> {
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries(form)) for (const v of [value].flat()) body.append(name, v);
    const response = await fetch(new URL(path, this.base), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: this.jar.header(), 'content-type': 'application/x-www-form-urlencoded', ...this.from, ...headers },
      body,
    });
    this.jar.store(response);
    keepArtifact('http-response', await response.clone().text());
    return response;
  }

  /** Follows same-server redirects; stops at a page (200) or at a redirect that leaves this server. */
  async follow(response: Response): Promise<Response | URL> {
    let current = response;
    for (let hops = 0; hops < 10; hops++) {
      const location = current.headers.get('location');
      if (current.status < 300 || current.status >= 400 || !location) return current;
      const next = new URL(location, this.base);
      if (next.origin !== new URL(this.base).origin) return next;
      current = await this.get(next.pathname + next.search);
    }
    throw new Error('too many redirects');
  }

  authorizeUrl(request: AuthorizeRequest): string {
    const params = new URLSearchParams({ response_type: 'code', state: 'st-1', ...request } as Record<string, string>);
    return `/oauth/authorize?${params}`;
  }
}

/** The hidden CSRF field and the form actions of a page. */
export function formOf(html: string): { csrf: string; uid: string } {
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
  const uid = /action="\/oauth\/interaction\/([^/"]+)\//.exec(html)?.[1];
  if (!csrf || !uid) throw new Error(`not a Mandate sign-in or consent page:\n${html.slice(0, 500)}`);
  return { csrf, uid };
}

/**
 * Signs in and consents through the pages (as a browser would), and returns where the server sent
 * the browser at the end: the client's redirect URI with a code, or an error.
 */
export async function authorize(browser: Browser, request: AuthorizeRequest, user: { email: string; password: string } | null, permissions?: string[]): Promise<URL> {
  let page = await browser.follow(await browser.get(browser.authorizeUrl(request)));
  if (page instanceof URL) return page;
  if (user) {
    const form = formOf(await page.text());
    page = await browser.follow(await browser.post(`/oauth/interaction/${form.uid}/login`, { csrf: form.csrf, email: user.email, password: user.password }));
    if (page instanceof URL) return page;
  }
  const html = await page.text();
  if (html.includes('name="password"')) throw new Error(`the sign-in was refused (${page.status}): ${/role="alert">([^<]*)/.exec(html)?.[1] ?? ''}`);
  const form = formOf(html);
  const offered = [...html.matchAll(/name="permission" value="([^"]+)"/g)].map((m) => m[1]!);
  const result = await browser.follow(await browser.post(`/oauth/interaction/${form.uid}/consent`, { csrf: form.csrf, permission: permissions ?? offered }));
  if (result instanceof URL) return result;
  throw new Error(`the flow ended on a page (${result.status}):\n${(await result.text()).slice(0, 500)}`);
}

export async function tokenRequest(base: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
  const body = (await response.json()) as Record<string, unknown>;
  for (const key of ['access_token', 'refresh_token'] as const) if (typeof body[key] === 'string') recordSecret(body[key]);
  return { status: response.status, body };
}

export async function register(base: string, metadata: Record<string, unknown>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${base}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(metadata) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** An MCP initialize with a bearer token: its HTTP status says whether the token is accepted there. */
export async function initializeStatus(base: string, path: string, token: string): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'attack', version: '1' } } }),
  });
}
