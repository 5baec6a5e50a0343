import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { jsonBody, serveOnLoopback, stopServer } from './loopback.ts';
import { recordSecret } from './db.ts';
import type { FakeJira, FakeUser } from './fake-jira.ts';

// Atlassian's authorization server (auth.atlassian.com) for tests: /authorize is played by consent()
// and deny() (the user's browser at the consent screen), /oauth/token grants codes (single use,
// PKCE S256 checked) and rotating refresh tokens (each good once). Tokens it issues are accepted by
// the FakeJira gateway and recorded as secrets for the suite's sweep.

export const CLIENT_ID = 'mandate-test-client';
export const CLIENT_SECRET = recordSecret('atlassian-client-secret-0123456789abcdef');

interface PendingCode {
  user: FakeUser;
  challenge: string;
  redirectUri: string;
  used: boolean;
}

const secret = (prefix: string) => recordSecret(`${prefix}-${randomBytes(18).toString('base64url')}`);

export class FakeAtlassianAuth {
  private server!: Server;
  url = '';
  readonly jira: FakeJira;
  private readonly codes = new Map<string, PendingCode>();
  private readonly refreshTokens = new Map<string, { user: FakeUser; used: boolean }>();
  /** Every token request: grant type, and why it was refused (null: granted). */
  readonly grants: { type: string; refused: string | null }[] = [];
  /** Seconds an access token lives. */
  accessTtl = 3600;
  /** Whether grants include a refresh token (offline_access). */
  issueRefreshTokens = true;
  /** Slows refresh grants down, so concurrent refreshes overlap. */
  refreshDelayMs = 0;

  constructor(jira: FakeJira) {
    this.jira = jira;
  }

  async start(): Promise<this> {
    ({ server: this.server, url: this.url } = await serveOnLoopback((req, res) => void this.handle(req, res)));
    return this;
  }

  stop(): Promise<void> {
    return stopServer(this.server);
  }

  get refreshGrants() {
    return this.grants.filter((g) => g.type === 'refresh_token');
  }

  /** The consent screen, approved by `user`: where Atlassian sends the browser back. */
  consent(authorizeUrl: string, user: FakeUser): string {
    const params = this.authorizeParams(authorizeUrl);
    const code = secret('code');
    this.codes.set(code, { user, challenge: params.get('code_challenge')!, redirectUri: params.get('redirect_uri')!, used: false });
    const back = new URL(params.get('redirect_uri')!);
    back.searchParams.set('code', code);
    back.searchParams.set('state', params.get('state')!);
    return back.toString();
  }

  /** The consent screen, declined. */
  deny(authorizeUrl: string): string {
    const params = this.authorizeParams(authorizeUrl);
    const back = new URL(params.get('redirect_uri')!);
    back.searchParams.set('error', 'access_denied');
    back.searchParams.set('error_description', 'User did not authorize the request');
    back.searchParams.set('state', params.get('state')!);
    return back.toString();
  }

  /** The authorize request as Atlassian validates it (a wrong one never reaches a consent screen). */
  private authorizeParams(authorizeUrl: string): URLSearchParams {
    const url = new URL(authorizeUrl);
    const params = url.searchParams;
    const problems: string[] = [];
    if (`${url.origin}${url.pathname}` !== `${this.url}/authorize`) problems.push(`authorize URL ${url.origin}${url.pathname}`);
    if (params.get('audience') !== 'api.atlassian.com') problems.push('audience');
    if (params.get('client_id') !== CLIENT_ID) problems.push('client_id');
    if (params.get('response_type') !== 'code') problems.push('response_type');
    if (params.get('prompt') !== 'consent') problems.push('prompt');
    if (params.get('code_challenge_method') !== 'S256' || !/^[\w-]{43}$/.test(params.get('code_challenge') ?? '')) problems.push('PKCE S256 challenge');
    if (!/^[\w-]{32,}$/.test(params.get('state') ?? '')) problems.push('state');
    if (!(params.get('scope') ?? '').split(' ').includes('offline_access')) problems.push('scope offline_access');
    if (!params.get('redirect_uri')) problems.push('redirect_uri');
    if (problems.length) throw new Error(`the authorize request is wrong: ${problems.join(', ')}`);
    return params;
  }

  private issue(user: FakeUser) {
    const accessToken = secret('access');
    this.jira.gateway.accessTokens.set(accessToken, user);
    const refreshToken = this.issueRefreshTokens ? secret('refresh') : undefined;
    if (refreshToken) this.refreshTokens.set(refreshToken, { user, used: false });
    return {
      access_token: accessToken,
      expires_in: this.accessTtl,
      token_type: 'Bearer',
      scope: 'read:jira-work write:jira-work read:jira-user offline_access',
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = await jsonBody(req);
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.method !== 'POST' || url.pathname !== '/oauth/token') return this.send(res, 404, { error: 'not_found' });
    if (!/^application\/json/.test(req.headers['content-type'] ?? '') || !parsed || typeof parsed !== 'object') return this.send(res, 400, { error: 'invalid_request' });
    const body = parsed as Record<string, string>;
    const type = body.grant_type ?? '';
    const refuse = (status: number, error: string, why: string) => {
      this.grants.push({ type, refused: why });
      this.send(res, status, { error, error_description: why });
    };
    if (body.client_id !== CLIENT_ID || body.client_secret !== CLIENT_SECRET) return refuse(401, 'access_denied', 'client authentication');
    if (type === 'authorization_code') {
      const pending = this.codes.get(body.code ?? '');
      if (!pending) return refuse(403, 'invalid_grant', 'unknown code');
      if (pending.used) return refuse(403, 'invalid_grant', 'code already used');
      pending.used = true;
      if (body.redirect_uri !== pending.redirectUri) return refuse(403, 'invalid_grant', 'redirect_uri differs');
      const verified = createHash('sha256').update(body.code_verifier ?? '').digest('base64url') === pending.challenge;
      if (!verified) return refuse(400, 'invalid_grant', 'PKCE verifier does not match the challenge');
      this.grants.push({ type, refused: null });
      return this.send(res, 200, this.issue(pending.user));
    }
    if (type === 'refresh_token') {
      if (this.refreshDelayMs) await new Promise((resolve) => setTimeout(resolve, this.refreshDelayMs));
      const held = this.refreshTokens.get(body.refresh_token ?? '');
      if (!held) return refuse(403, 'unauthorized_client', 'unknown refresh token');
      if (held.used) return refuse(403, 'unauthorized_client', 'refresh token already used (rotated)');
      held.used = true;
      this.grants.push({ type, refused: null });
      return this.send(res, 200, this.issue(held.user));
    }
    return refuse(400, 'unsupported_grant_type', type);
  }

  /** Revokes every refresh token (the user removed the app's access at Atlassian). */
  revokeAll(): void {
    for (const held of this.refreshTokens.values()) held.used = true;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }
}
