import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { UpstreamHttp } from '../http.ts';
import type { JiraOAuthSettings } from '../settings.ts';

// Atlassian's OAuth 2.0 (3LO) authorization server and the API gateway's accessible-resources, as
// https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/ describes them, with PKCE
// (S256) on top. Requests go through the PM upstream client: timeouts, deadline, network policy.

const tokenAnswer = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().int().positive(),
  refresh_token: z.string().min(1).optional(),
  scope: z.string().optional(),
});

const resourcesAnswer = z.array(z.object({
  id: z.string().min(1),
  url: z.url({ protocol: /^https?$/ }),
  name: z.string().optional(),
  scopes: z.array(z.string()).optional(),
}));

export interface TokenGrant {
  accessToken: string;
  /** Absent when offline_access was not granted: the connection ends when the access token does. */
  refreshToken?: string;
  expiresAt: Date;
  scopes: string[];
}

export interface AccessibleSite {
  cloudId: string;
  url: string;
  name: string;
  scopes: string[];
}

/** Why the authorization server refused a grant (an invalid code, a refresh token used or revoked). */
export class GrantRefused extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string) {
    super(`the authorization server refused the grant (HTTP ${status}: ${reason})`);
    this.name = 'GrantRefused';
    this.status = status;
    this.reason = reason;
  }
}

const base64url = (bytes: Buffer) => bytes.toString('base64url');

/** A fresh PKCE pair: the verifier stays with us, the S256 challenge goes to the authorize URL. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = base64url(randomBytes(32));
  return { verifier, challenge: base64url(createHash('sha256').update(verifier).digest()) };
}

/** An opaque, unguessable state value (256 random bits). */
export const newState = () => base64url(randomBytes(32));
export const hashState = (state: string) => createHash('sha256').update(state).digest('hex');

export class AtlassianOAuth {
  readonly settings: JiraOAuthSettings;
  private readonly http: UpstreamHttp;

  constructor(http: UpstreamHttp, settings: JiraOAuthSettings) {
    this.http = http;
    this.settings = settings;
  }

  authorizeUrl(options: { state: string; challenge: string; redirectUri: string }): string {
    const url = new URL(`${this.settings.authUrl}/authorize`);
    url.search = new URLSearchParams({
      audience: 'api.atlassian.com',
      client_id: this.settings.clientId,
      scope: this.settings.scopes.join(' '),
      redirect_uri: options.redirectUri,
      state: options.state,
      response_type: 'code',
      prompt: 'consent',
      code_challenge: options.challenge,
      code_challenge_method: 'S256',
    }).toString();
    return url.toString();
  }

  exchangeCode(code: string, verifier: string, redirectUri: string, now: Date): Promise<TokenGrant> {
    return this.token({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }, now);
  }

  /** Refresh tokens rotate: the answer carries a new one, and the old one is spent. */
  refresh(refreshToken: string, now: Date): Promise<TokenGrant> {
    return this.token({ grant_type: 'refresh_token', refresh_token: refreshToken }, now);
  }

  async accessibleSites(accessToken: string): Promise<AccessibleSite[]> {
    const response = await this.http.send({
      method: 'GET',
      url: `${this.settings.apiUrl}/oauth/token/accessible-resources`,
      headers: { authorization: `Bearer ${accessToken}` },
    });
    if (response.status !== 200) throw new GrantRefused(response.status, 'accessible-resources was refused');
    const parsed = resourcesAnswer.safeParse(response.body);
    if (!parsed.success) throw new GrantRefused(502, 'accessible-resources answered in an unexpected shape');
    return parsed.data.map((site) => ({ cloudId: site.id, url: site.url.replace(/\/+$/, ''), name: site.name ?? site.url, scopes: site.scopes ?? [] }));
  }

  /** Where the Jira REST API of a site is served for OAuth tokens. */
  apiRoot(cloudId: string): string {
    return `${this.settings.apiUrl}/ex/jira/${encodeURIComponent(cloudId)}`;
  }

  private async token(grant: Record<string, string>, now: Date): Promise<TokenGrant> {
    const response = await this.http.send({
      method: 'POST',
      url: `${this.settings.authUrl}/oauth/token`,
      body: { ...grant, client_id: this.settings.clientId, client_secret: this.settings.clientSecret },
    });
    if (response.status !== 200) {
      const body = response.body as { error?: unknown } | undefined;
      const reason = typeof body?.error === 'string' && /^[\w.-]{1,60}$/.test(body.error) ? body.error : `HTTP ${response.status}`;
      throw new GrantRefused(response.status, reason);
    }
    const parsed = tokenAnswer.safeParse(response.body);
    if (!parsed.success) throw new GrantRefused(502, 'the token endpoint answered in an unexpected shape');
    const answer = parsed.data;
    return {
      accessToken: answer.access_token,
      ...(answer.refresh_token ? { refreshToken: answer.refresh_token } : {}),
      expiresAt: new Date(now.getTime() + answer.expires_in * 1000),
      scopes: (answer.scope ?? this.settings.scopes.join(' ')).split(/\s+/).filter(Boolean),
    };
  }
}
