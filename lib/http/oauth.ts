import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { OpError } from '../errors.ts';
import { authenticatePassword } from '../identity/authenticate.ts';
import { LoginLimiter } from '../identity/login-limiter.ts';
import type { OAuthServer, PendingInteraction } from '../oauth/server.ts';
import { acceptableRedirectUri, normaliseRegistration, REDIRECT_URI_RULE } from '../oauth/registration.ts';
import { RegistrationLimiter } from '../oauth/registration-limiter.ts';
import { FULL_SCOPE, MCP_RESOURCE_PATHS } from '../oauth/settings.ts';
import { ALL_PERMISSIONS, isPermission, type Permission } from '../access/permissions.ts';
import { scrubText } from '../redact.ts';
import { hostileValue } from '../ops/error-mapping.ts';
import type { Runtime } from '../runtime.ts';
import type { HttpAuthenticator } from './authenticate.ts';
import { consentPage, problemPage, sendPage, signInPage } from './oauth-pages.ts';
import { readFormBody, readJsonBody, sendError, sendJson } from './respond.ts';

// Over https the cookie is __Host-: no sibling subdomain can set it for this host.
const csrfCookieName = (origin: string) => (origin.startsWith('https:') ? '__Host-mandate_csrf' : 'mandate_csrf');
const MAX_REGISTRATION_BYTES = 16 * 1024;
const MAX_REDIRECT_URIS = 20;
const PRM_PATH = '/.well-known/oauth-protected-resource';
const INTERACTION = /^\/oauth\/interaction\/([A-Za-z0-9_-]{1,64})(?:\/(login|consent|deny))?$/;

/** RFC 9728: where a client learns which authorization server issues tokens for an MCP endpoint. */
export const resourceMetadataUrl = (issuer: string, mcpPath: string) => `${issuer}${PRM_PATH}${mcpPath}`;

/** The scopes an MCP endpoint advertises: `mandate` (the user's own permissions) or any of them. */
export const SCOPES_SUPPORTED = [FULL_SCOPE, ...ALL_PERMISSIONS];

/**
 * The OAuth face: protected-resource metadata, the authorization server's own routes (the
 * library's), and the sign-in and consent pages. Only mounted when OAuth is enabled.
 */
export class OAuthHttp {
  private readonly oauth: OAuthServer;
  private readonly runtime: Runtime;
  private readonly auth: HttpAuthenticator;
  private readonly logins: LoginLimiter;
  private readonly registrations: RegistrationLimiter;
  private readonly origin: string;

  constructor(runtime: Runtime, oauth: OAuthServer, auth: HttpAuthenticator) {
    this.runtime = runtime;
    this.oauth = oauth;
    this.auth = auth;
    this.logins = new LoginLimiter(runtime.db.orm);
    this.registrations = new RegistrationLimiter(runtime.db.orm, oauth.settings.registrationsPerHour);
    this.origin = new URL(oauth.settings.issuer).origin;
  }

  /** Whether the request is this face's; it is then answered. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const path = url.pathname;
    if (path === PRM_PATH || path.startsWith(`${PRM_PATH}/`)) {
      this.protectedResource(res, path.slice(PRM_PATH.length) || '/mcp');
      return true;
    }
    if (path === '/.well-known/oauth-authorization-server') {
      this.oauth.handleMetadata(req, res, this.auth.clientAddress(req));
      return true;
    }
    if (path === '/.well-known/openid-configuration' || path === '/oauth/jwks') {
      this.oauth.handle(req, res, this.auth.clientAddress(req));
      return true;
    }
    const interaction = INTERACTION.exec(path);
    if (interaction) {
      void this.interaction(req, res, interaction[1]!, interaction[2] as 'login' | 'consent' | 'deny' | undefined).catch((error: unknown) => this.pageFailed(res, error));
      return true;
    }
    if (path === '/oauth/register' && req.method === 'POST') {
      void this.register(req, res).catch((error: unknown) => this.apiFailed(res, error));
      return true;
    }
    if (path.startsWith('/oauth/')) {
      this.oauth.handle(req, res, this.auth.clientAddress(req));
      return true;
    }
    return false;
  }

  private protectedResource(res: ServerResponse, mcpPath: string): void {
    if (!(MCP_RESOURCE_PATHS as readonly string[]).includes(mcpPath)) {
      sendJson(res, 404, { error: { code: 'not_found', message: `no protected resource at ${mcpPath} (try ${MCP_RESOURCE_PATHS.join(', ')})` } });
      return;
    }
    const issuer = this.oauth.settings.issuer;
    sendJson(
      res,
      200,
      {
        resource: `${issuer}${mcpPath}`,
        authorization_servers: [issuer],
        scopes_supported: SCOPES_SUPPORTED,
        bearer_methods_supported: ['header'],
        resource_name: `Mandate ${mcpPath}`,
      },
      { 'cache-control': 'max-age=300', 'access-control-allow-origin': '*' },
    );
  }

  // DCR: rate limited per address unless it repeats a registration; native apps adjusted (see
  // normaliseRegistration). The library then validates and stores it.
  private async register(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!this.oauth.settings.dynamicRegistration) {
      sendJson(res, 403, { error: 'access_denied', error_description: 'dynamic client registration is switched off on this server; ask an administrator to register your client, or use a client ID metadata document' });
      return;
    }
    const raw = await readJsonBody(req);
    const hostile = hostileValue(raw);
    const refusal = hostile
      ? `${hostile.field} ${hostile.message}`
      : JSON.stringify(raw).length > MAX_REGISTRATION_BYTES
        ? `the registration is larger than ${MAX_REGISTRATION_BYTES} bytes`
        : Array.isArray(raw.redirect_uris) && raw.redirect_uris.length > MAX_REDIRECT_URIS
          ? `redirect_uris: at most ${MAX_REDIRECT_URIS}`
          : null;
    if (refusal) {
      sendJson(res, 400, { error: 'invalid_client_metadata', error_description: refusal });
      return;
    }
    const unacceptable = (Array.isArray(raw.redirect_uris) ? raw.redirect_uris : []).find((uri) => typeof uri !== 'string' || !acceptableRedirectUri(uri));
    if (unacceptable !== undefined) {
      sendJson(res, 400, { error: 'invalid_redirect_uri', error_description: `redirect_uris: ${JSON.stringify(unacceptable).slice(0, 200)} ${REDIRECT_URI_RULE}` });
      return;
    }
    const body = normaliseRegistration(raw);
    // A registration already made is answered with that client: nothing is written or counted.
    const known = await this.oauth.knownRegistration(body);
    if (known) {
      sendJson(res, 201, known, { 'cache-control': 'no-store' });
      return;
    }
    const address = this.auth.clientAddress(req);
    await this.registrations.take(address);
    (req as IncomingMessage & { body?: unknown }).body = body;
    this.oauth.handle(req, res, address);
  }

  private async interaction(req: IncomingMessage, res: ServerResponse, uid: string, step: 'login' | 'consent' | 'deny' | undefined): Promise<void> {
    const pending = await this.oauth.pending(req, res, uid);
    const name = csrfCookieName(this.origin);
    const cookie = csrfCookie(req, name);
    if (req.method === 'GET' && step === undefined) {
      const token = cookie ?? randomBytes(24).toString('base64url');
      const set: Record<string, string> = cookie ? {} : { 'set-cookie': `${name}=${token}; Path=/; HttpOnly; SameSite=Strict${this.origin.startsWith('https:') ? '; Secure' : ''}` };
      await this.render(res, pending, this.csrfFor(uid, token), undefined, set);
      return;
    }
    if (req.method !== 'POST' || step === undefined) {
      sendPage(res, 405, problemPage('Not allowed', 'This page takes a form submission.'));
      return;
    }
    const form = await readFormBody(req);
    if (!this.sameOrigin(req) || !cookie || !this.csrfValid(uid, cookie, form.get('csrf'))) {
      sendPage(res, 403, problemPage('This form has expired', 'The form was not sent from this sign-in page (or its cookie is missing). Nothing was changed.'));
      return;
    }
    const address = this.auth.clientAddress(req);
    if (step === 'deny') return this.oauth.deny(req, res, pending, { address });
    if (step === 'login') return this.login(req, res, pending, form, this.csrfFor(uid, cookie), address);
    if (pending.prompt !== 'consent' || !pending.accountId) {
      sendPage(res, 400, problemPage('Sign in first', 'This request has no signed-in user yet.'));
      return;
    }
    const offered = await this.offered(pending);
    const chosen = new Set(form.getAll('permission').filter(isPermission));
    // Only what was offered; all of it when nothing was narrowed (no narrowing: the grant follows
    // the user's permissions as they change, as a `mandate` scope asks).
    const narrowed = offered.filter((p) => chosen.has(p));
    const all = narrowed.length === offered.length && pending.requestedPermissions === null;
    if (narrowed.length === 0) {
      sendPage(res, 400, problemPage('Nothing chosen', 'Choose at least one permission, or deny the request.'), pending.redirectUri);
      return;
    }
    await this.oauth.finishConsent(req, res, pending, all ? null : narrowed, { address });
  }

  private async login(req: IncomingMessage, res: ServerResponse, pending: PendingInteraction, form: URLSearchParams, csrf: string, address: string): Promise<void> {
    const email = (form.get('email') ?? '').slice(0, 320);
    const password = (form.get('password') ?? '').slice(0, 1024);
    // The same limiter as Basic logins: five failures a minute per address, address + email, email.
    let attempt: { refund(): Promise<void> };
    try {
      attempt = await this.logins.take(address, email);
    } catch (error) {
      if (error instanceof OpError && error.code === 'rate_limited') {
        await this.render(res, pending, csrf, 'Too many failed sign-ins. Wait a minute and try again.', { 'retry-after': String(error.retryAfterSeconds ?? 60) }, 429);
        return;
      }
      throw error;
    }
    let userId: string;
    try {
      // No account has a NUL in its email or password (the database could not store one): wrong.
      if (hostileValue([email, password])) throw new OpError('unauthenticated', 'invalid or expired credentials');
      userId = (await authenticatePassword(this.runtime.scope(), email, password)).userId;
      await attempt.refund();
    } catch (error) {
      if (!(error instanceof OpError && error.code === 'unauthenticated')) {
        await attempt.refund().catch(() => undefined);
        throw error;
      }
      await this.runtime.runner.audit.enqueue({ caller: { kind: 'system', name: 'oauth' }, operation: 'oauth_sign_in', outcome: 'denied', errorCode: 'unauthenticated', target: pending.clientId.slice(0, 200), detail: { client_id: pending.clientId }, clientAddress: address });
      await this.render(res, pending, csrf, 'Wrong email or password.', {}, 401);
      return;
    }
    await this.runtime.runner.audit.enqueue({ caller: { kind: 'user', userId, name: '', email: email.trim().toLowerCase(), type: 'human' }, operation: 'oauth_sign_in', outcome: 'allowed', target: pending.clientId.slice(0, 200), detail: { client_id: pending.clientId }, clientAddress: address });
    await this.oauth.finishLogin(req, res, userId);
  }

  private async render(res: ServerResponse, pending: PendingInteraction, csrf: string, error?: string, headers: Record<string, string> = {}, status = 200): Promise<void> {
    if (pending.prompt === 'login' || !pending.accountId) {
      sendPage(res, status, signInPage(pending, csrf, error), pending.redirectUri, headers);
      return;
    }
    const email = await this.oauth.userEmail(pending.accountId);
    sendPage(res, status, consentPage(pending, { email: email ?? '(unknown user)' }, await this.offered(pending), csrf), pending.redirectUri, headers);
  }

  /** What the consent may grant: the user's own permissions, within what the client asked for. */
  private async offered(pending: PendingInteraction): Promise<Permission[]> {
    const held = await this.runtime.resolver.resolveAnywhere(this.runtime.scope(), { userId: pending.accountId! });
    const mine = ALL_PERMISSIONS.filter((p) => held.grants.has(p));
    return pending.requestedPermissions ? mine.filter((p) => pending.requestedPermissions!.includes(p)) : mine;
  }

  private csrfFor(uid: string, cookie: string): string {
    return createHmac('sha256', this.oauth.formKey).update(`${uid}\0${cookie}`).digest('base64url');
  }

  private csrfValid(uid: string, cookie: string, given: string | null): boolean {
    if (!given) return false;
    const expected = Buffer.from(this.csrfFor(uid, cookie));
    const actual = Buffer.from(given);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  // A form sent from another site is refused outright. Our pages' no-referrer policy makes a
  // browser send "null" for our own forms: those rest on the CSRF token and its Strict cookie.
  private sameOrigin(req: IncomingMessage): boolean {
    const origin = req.headers.origin;
    return origin === undefined || origin === 'null' || origin === this.origin;
  }

  private pageFailed(res: ServerResponse, error: unknown): void {
    const name = (error as { name?: string })?.name ?? '';
    if (res.headersSent) return;
    if (name === 'SessionNotFound' || name === 'InvalidClient') {
      sendPage(res, 400, problemPage('This sign-in has expired', 'The sign-in request is no longer valid (it expired, was finished, or was opened in another browser).'));
      return;
    }
    if (error instanceof OpError && error.status < 500) {
      sendPage(res, error.status, problemPage('This request cannot go on', error.message));
      return;
    }
    // The library's own refusals (invalid_target, invalid_request, ...): the client's mistake.
    const refused = error as { statusCode?: number; error?: string; error_description?: string };
    if (typeof refused.statusCode === 'number' && refused.statusCode < 500 && typeof refused.error === 'string') {
      sendPage(res, refused.statusCode, problemPage('This request cannot go on', `${refused.error}: ${refused.error_description ?? ''}`));
      return;
    }
    this.runtime.log.error({ err: { type: name, message: scrubText(String((error as Error)?.message)) } }, 'OAuth page failed');
    sendPage(res, 500, problemPage('Something went wrong', 'The server log has the details.'));
  }

  private apiFailed(res: ServerResponse, error: unknown): void {
    if (res.headersSent) return;
    if (error instanceof OpError) {
      sendError(res, error);
      return;
    }
    this.runtime.log.error({ err: { type: (error as Error)?.name, message: scrubText(String((error as Error)?.message)) } }, 'OAuth request failed');
    sendJson(res, 500, { error: 'server_error', error_description: 'internal error; the server log has the details' });
  }
}

function csrfCookie(req: IncomingMessage, cookieName: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === cookieName && /^[A-Za-z0-9_-]{32}$/.test(value.join('='))) return value.join('=');
  }
  return undefined;
}
