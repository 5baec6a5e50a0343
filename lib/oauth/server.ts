import { generateKeyPairSync, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import Provider, { errors, type Configuration } from 'oidc-provider';
import type { EmSource, Orm } from '../db/orm.ts';
import { ApiToken, User } from '../db/entities/index.ts';
import { ALL_PERMISSIONS, isPermission, type Permission } from '../access/permissions.ts';
import type { Vault } from '../vault.ts';
import type { AuditRecord } from '../audit/writer.ts';
import type { Logger } from '../log.ts';
import type { UserCaller } from '../identity/caller.ts';
import { oauthAdapter, recordKey, sha256Hex } from './adapter.ts';
import { endGrant } from './grants.ts';
import { escapeHtml } from '../html.ts';
import { acceptableRedirectUri, isPublicRegistration, registrationClientId } from './registration.ts';
import { FULL_SCOPE, resourceUrls, type OAuthSettings } from './settings.ts';
import { verifyAccessToken, type VerifiedAccessToken } from './access-tokens.ts';
import { auditProtocolSteps, OAUTH_SYSTEM } from './audit-events.ts';

const SYSTEM = OAUTH_SYSTEM;

/** What a sign-in or consent page shows: the pending request, as the authorization server sees it. */
export interface PendingInteraction {
  uid: string;
  prompt: 'login' | 'consent';
  clientId: string;
  clientName: string;
  redirectHost: string;
  redirectUri: string;
  resource: string;
  /** The scope parameter as sent. */
  requestedScope: string;
  /** Permission scopes asked for; null: `mandate`, everything the user holds. */
  requestedPermissions: Permission[] | null;
  /** Signed in already (the browser session): whose consent this is. */
  accountId: string | undefined;
}

function signingKey() {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: randomUUID(), alg: 'ES256', use: 'sig' };
}

/**
 * Mandate as an OAuth 2.1 authorization server for its MCP endpoints, on oidc-provider: the
 * protocol (authorization code with PKCE S256, resource indicators, refresh rotation with reuse
 * detection, revocation, registration, client metadata documents) is the library's; what is
 * Mandate's is who signs in, what a grant may carry (the user's own permissions, narrowed by
 * scope) and that every grant acts through an api_token row, so the resolver, the access-change feed,
 * revocation and deactivation apply to OAuth access exactly as to `mnd_` tokens.
 */
export class OAuthServer {
  readonly settings: OAuthSettings;
  readonly provider: Provider;
  /** Keys for the CSRF tokens of the sign-in and consent forms. */
  readonly formKey: Buffer;
  private readonly orm: Orm;
  private readonly audit: (record: AuditRecord) => void | Promise<void>;
  private readonly log: Logger;
  private readonly resources: Set<string>;
  private readonly callback: (req: IncomingMessage, res: ServerResponse) => void;

  constructor(
    orm: Orm,
    settings: OAuthSettings,
    deps: {
      vault: Vault;
      audit: (record: AuditRecord) => void | Promise<void>;
      log: Logger;
      /** GETs a client's metadata document through the SSRF-guarded upstream client. */
      fetch: (url: string, init: RequestInit) => Promise<Response>;
    },
  ) {
    this.orm = orm;
    this.settings = settings;
    this.audit = deps.audit;
    this.log = deps.log;
    this.resources = new Set(resourceUrls(settings.issuer));
    // Keys derive from the vault's (shared by every instance); the current one signs, older ones
    // still verify, so rotating the vault key signs no one out. Without a vault: this process's own.
    const secrets = deps.vault.configured ? [...deps.vault.keyMaterial()].reverse() : [randomBytes(32)];
    const derive = (info: string, secret: Buffer = secrets[0]!) => Buffer.from(hkdfSync('sha256', secret, 'mandate-oauth', info, 32));
    this.formKey = derive('forms');
    const vault = deps.vault;
    const Adapter = oauthAdapter(orm, {
      grantEnded: (grantId) => endGrant(this.orm.em.fork(), grantId, new Date()),
      sealSecret: (value, clientId) => {
        if (!vault.configured) throw new errors.InvalidClientMetadata('a confidential client needs a vault key on this server; register with token_endpoint_auth_method "none"');
        return vault.seal(value, `oauth_client:${clientId}`);
      },
      openSecret: (sealed, clientId) => vault.open(sealed, `oauth_client:${clientId}`),
    });
    const scopes = [FULL_SCOPE, ...ALL_PERMISSIONS];
    const configuration: Configuration = {
      adapter: Adapter as unknown as Configuration['adapter'],
      clients: [],
      findAccount: async (_ctx, sub) => ((await this.userActive(sub)) ? { accountId: sub, claims: async () => ({ sub }) } : undefined),
      jwks: { keys: [signingKey() as never] },
      cookies: { keys: secrets.map((secret) => derive('cookies', secret).toString('base64url')), long: { signed: true, httpOnly: true, sameSite: 'lax' }, short: { signed: true, httpOnly: true, sameSite: 'lax' } },
      scopes,
      claims: { openid: ['sub'] },
      responseTypes: ['code'],
      clientDefaults: { grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', id_token_signed_response_alg: 'ES256' },
      clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post'],
      pkce: { required: () => true },
      allowOmittingSingleRegisteredRedirectUri: false,
      rotateRefreshToken: true,
      // A grant lives as long as its consent (and its api_token row), not as long as the browser's
      // sign-in: signing out, or in as someone else, must not end the apps connected before.
      expiresWithSession: async () => false,
      issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
      ttl: {
        AccessToken: settings.accessTokenSeconds,
        AuthorizationCode: 60,
        Interaction: 600,
        Session: 14 * 86_400,
        Grant: settings.grantSeconds,
        RefreshToken: settings.refreshTokenSeconds,
      },
      interactions: { url: (_ctx, interaction) => `/oauth/interaction/${interaction.uid}` },
      routes: {
        authorization: '/oauth/authorize',
        token: '/oauth/token',
        registration: '/oauth/register',
        revocation: '/oauth/revoke',
        jwks: '/oauth/jwks',
        end_session: '/oauth/logout',
        userinfo: '/oauth/userinfo',
        introspection: '/oauth/introspect',
        pushed_authorization_request: '/oauth/par',
      },
      features: {
        devInteractions: { enabled: false },
        userinfo: { enabled: false },
        rpInitiatedLogout: { enabled: false },
        introspection: { enabled: false },
        // RFC 7009: a client revokes only tokens issued to it (anyone else's is silently ignored,
        // so a token found elsewhere cannot be used to end someone's access).
        revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
        registration: {
          enabled: settings.dynamicRegistration,
          idFactory: (ctx) => registrationClientId((ctx.oidc.body ?? {}) as Record<string, unknown>),
          issueRegistrationAccessToken: false,
        },
        clientIdMetadataDocument: {
          enabled: settings.clientMetadataDocuments,
          ack: 'draft-02' as never,
          // Ids are stored with grants (at most 255 characters) and shown on consent pages.
          allowFetch: async (_ctx, clientId) => clientId.length <= 255,
          // The same redirect rule as for every other client.
          allowClient: async (_ctx, client) => (client.redirectUris ?? []).every(acceptableRedirectUri),
        },
        resourceIndicators: {
          enabled: true,
          // A client that names no resource gets one for /mcp (every server the user may use).
          defaultResource: async (_ctx, _client, oneOf) => oneOf ?? `${settings.issuer}/mcp`,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx, resource) => {
            if (!this.resources.has(resource)) throw new errors.InvalidTarget(`${resource} is not an MCP endpoint of this server`);
            return { scope: scopes.join(' '), audience: resource, accessTokenTTL: settings.accessTokenSeconds, accessTokenFormat: 'opaque' };
          },
        },
      },
      fetch: deps.fetch as never,
      renderError: async (ctx, out) => {
        ctx.type = 'html';
        ctx.set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
        ctx.set('x-frame-options', 'DENY');
        ctx.set('referrer-policy', 'no-referrer');
        ctx.body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Mandate: sign-in failed</title></head><body><h1>This sign-in cannot go on</h1><p><strong>${escapeHtml(out.error)}</strong>: ${escapeHtml(out.error_description)}</p><p>Go back to the application and connect again.</p></body></html>`;
      },
    };
    this.provider = new Provider(settings.issuer, configuration);
    // Behind whatever proxy: handle() sets the forwarded headers itself.
    this.provider.proxy = true;
    // Every answer of the library's own (its form_post and redirect pages included) cannot be
    // framed, sends no referrer and is not sniffed.
    this.provider.use(async (ctx, next) => {
      await next();
      ctx.set('x-frame-options', 'DENY');
      ctx.set('referrer-policy', 'no-referrer');
      ctx.set('x-content-type-options', 'nosniff');
      if (!ctx.response.get('content-security-policy')) ctx.set('content-security-policy', "frame-ancestors 'none'; base-uri 'none'");
      // A redirect says where in its Location alone: no "Redirecting to <url with the code>" body.
      if (ctx.status >= 300 && ctx.status < 400) ctx.body = '';
    });
    auditProtocolSteps(this.provider, { audit: this.audit, log: this.log, callerOf: (userId) => this.userCaller(userId) });
    this.callback = this.provider.callback();
  }

  /**
   * Serves the library's own routes (authorize, token, register, revoke, jwks, discovery). The
   * library reads the host, scheme and client address from headers; they are set here, from the
   * issuer and from the address the HTTP face determined, so no client can choose what the
   * metadata names or what the audit records.
   */
  handle(req: IncomingMessage, res: ServerResponse, clientAddress: string): void {
    const issuer = new URL(this.settings.issuer);
    req.headers.host = issuer.host;
    req.headers['x-forwarded-host'] = issuer.host;
    req.headers['x-forwarded-proto'] = issuer.protocol.slice(0, -1);
    req.headers['x-forwarded-for'] = clientAddress;
    this.callback(req, res);
  }

  /** The library's discovery document, as RFC 8414 authorization-server metadata. */
  handleMetadata(req: IncomingMessage, res: ServerResponse, clientAddress: string): void {
    req.url = '/.well-known/openid-configuration';
    this.handle(req, res, clientAddress);
  }

  /**
   * The client an identical public registration made before, as a registration response, or null.
   * Only public clients are shared this way: there is no secret to hand to whoever asks again.
   */
  async knownRegistration(body: Record<string, unknown>): Promise<Record<string, unknown> | null> {
    if (!isPublicRegistration(body)) return null;
    const row = await this.orm.em.fork().execute<{ payload: Record<string, unknown> | string }>(
      `select payload from oauth_record where key = ?`,
      [recordKey('Client', registrationClientId(body))],
      'get',
    );
    if (!row) return null;
    const payload = (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as Record<string, unknown>;
    return 'client_secret' in payload ? null : payload;
  }

  async pending(req: IncomingMessage, res: ServerResponse, uid: string): Promise<PendingInteraction> {
    const details = await this.provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new errors.SessionNotFound('this sign-in belongs to another request');
    const params = details.params as Record<string, unknown>;
    const clientId = String(params.client_id);
    const client = await this.provider.Client.find(clientId);
    if (!client) throw new errors.InvalidClient('the client is no longer registered');
    const redirect = String(params.redirect_uri ?? '');
    // A grant is bound to one endpoint: a request naming several is refused, not silently narrowed.
    if (Array.isArray(params.resource)) throw new errors.InvalidTarget('request one resource (one MCP endpoint) per authorization');
    const resource = typeof params.resource === 'string' ? params.resource : `${this.settings.issuer}/mcp`;
    const requested = String(params.scope ?? '').split(/\s+/).filter(Boolean);
    const permissions = requested.filter(isPermission);
    // What the grant carries must be said: `mandate` (all of the user's own) or permission names.
    if (!requested.includes(FULL_SCOPE) && permissions.length === 0) {
      throw new errors.InvalidScope(`ask for scope "${FULL_SCOPE}" (all of your Mandate permissions) or for permission names such as "pm:read"`, String(params.scope ?? ''));
    }
    return {
      uid: details.uid,
      prompt: details.prompt.name === 'login' ? 'login' : 'consent',
      clientId,
      clientName: String(client.clientName ?? clientId),
      redirectHost: URL.parse(redirect)?.host || redirect.split(':')[0] || '',
      redirectUri: redirect,
      resource,
      requestedScope: requested.join(' '),
      requestedPermissions: requested.includes(FULL_SCOPE) ? null : permissions,
      accountId: details.session?.accountId,
    };
  }

  /** The user signed in: the authorization request resumes (to its consent). */
  async finishLogin(req: IncomingMessage, res: ServerResponse, userId: string): Promise<void> {
    await this.provider.interactionFinished(req, res, { login: { accountId: userId } }, { mergeWithLastSubmission: false });
  }

  /**
   * The user consented: a grant for exactly the chosen permissions (null: all of the user's own),
   * and the api_token row it acts through, then the request resumes and a code is issued.
   */
  async finishConsent(req: IncomingMessage, res: ServerResponse, pending: PendingInteraction, permissions: Permission[] | null, client: { address: string }): Promise<void> {
    const userId = pending.accountId!;
    const grant = new this.provider.Grant({ accountId: userId, clientId: pending.clientId });
    // The protocol's grant covers the scope as asked (the library asks again otherwise); what the
    // token may do is the api_token row's: exactly the permissions chosen here.
    grant.addOIDCScope(pending.requestedScope);
    grant.addResourceScope(pending.resource, pending.requestedScope);
    const grantId = await grant.save();
    const em = this.orm.em.fork();
    em.create(ApiToken, {
      user: em.getReference(User, userId),
      name: `OAuth: ${pending.clientName}`.slice(0, 100),
      prefix: 'oauth',
      // No raw token of this row exists: it is reached only through its grant's access tokens.
      hash: sha256Hex(randomBytes(32).toString('hex')),
      scopes: permissions,
      expiresAt: new Date(Date.now() + this.settings.grantSeconds * 1000),
      createdById: userId,
      oauthGrantId: grantId,
      oauthClientId: pending.clientId.slice(0, 255),
    });
    await em.flush();
    await this.audit({
      caller: await this.userCaller(userId),
      operation: 'oauth_consent',
      outcome: 'allowed',
      target: pending.clientId.slice(0, 200),
      detail: { client_id: pending.clientId, client_name: pending.clientName, redirect_host: pending.redirectHost, resource: pending.resource, permissions: permissions ?? 'all of the user\'s own', grant_id: grantId },
      clientAddress: client.address,
    });
    await this.provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  /** The user said no: nothing is stored, and the client hears access_denied. */
  async deny(req: IncomingMessage, res: ServerResponse, pending: PendingInteraction, client: { address: string }): Promise<void> {
    await this.audit({
      caller: pending.accountId ? await this.userCaller(pending.accountId) : SYSTEM,
      operation: 'oauth_deny',
      outcome: 'denied',
      target: pending.clientId.slice(0, 200),
      detail: { client_id: pending.clientId, client_name: pending.clientName, resource: pending.resource },
      clientAddress: client.address,
    });
    await this.provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied the request' }, { mergeWithLastSubmission: false });
  }

  /** See verifyAccessToken (access-tokens.ts). */
  verifyAccessToken(source: EmSource, raw: string, now: Date): Promise<VerifiedAccessToken> {
    return verifyAccessToken(source, raw, now);
  }

  /** Removes registrations that never obtained a grant, and records past their expiry. */
  async sweep(): Promise<number> {
    const em = this.orm.em.fork();
    const cutoff = new Date(Date.now() - this.settings.unusedClientSeconds * 1000);
    const clients = await em.execute<{ key: string }[]>(
      `delete from oauth_record where model = 'Client' and key like 'Client:dcr-%' and last_used_at is null and created_at < ? returning key`,
      [cutoff],
    );
    await em.execute(`delete from oauth_record where expires_at is not null and expires_at < now()`, [], 'run');
    return clients.length;
  }

  async userEmail(userId: string): Promise<string | undefined> {
    const caller = await this.userCaller(userId);
    return caller.kind === 'user' ? caller.email : undefined;
  }

  private async userActive(userId: string): Promise<boolean> {
    const row = await this.orm.em.fork().execute<{ active: boolean }>(`select active from app_user where id::text = ?`, [userId], 'get');
    return row?.active === true;
  }

  private async userCaller(userId: string): Promise<UserCaller | typeof SYSTEM> {
    const row = await this.orm.em.fork().execute<{ name: string; email: string; type: UserCaller['type'] }>(
      `select name, email, type from app_user where id::text = ?`,
      [userId],
      'get',
    );
    return row ? { kind: 'user', userId, name: row.name, email: row.email, type: row.type } : SYSTEM;
  }
}
