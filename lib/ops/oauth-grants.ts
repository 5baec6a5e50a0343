import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ApiToken, OAuthRecord } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';
import { recordKey } from '../oauth/adapter.ts';
import { endClientGrants, endGrant } from '../oauth/grants.ts';
import { acceptableRedirectUri, REDIRECT_URI_RULE } from '../oauth/registration.ts';
import { operation, type OperationContext } from './operation.ts';
import { findUser } from './lookups.ts';
import { itemsOf, isoTime, isoTimeOrNull } from './outputs.ts';
import { uuidField } from './schemas.ts';
import { me } from './self.ts';
import { notThroughOAuth } from './guards.ts';

// Connected applications: the grants users gave OAuth clients (each acts through an api_token row,
// so revoking one is revoking that row: refused at the next request on every instance), and the
// clients themselves.

export const oauthGrantOutput = z.strictObject({
  id: z.string().describe('the grant (what revoke_my_oauth_grant takes)'),
  user_id: z.string(),
  client_id: z.string(),
  client_name: z.string(),
  resource: z.string().nullable().describe('the MCP endpoint its tokens are good for'),
  permissions: z.array(z.string()).nullable().describe("the permissions it carries; null: all of the user's own"),
  created_at: isoTime,
  expires_at: isoTimeOrNull,
  last_used_at: isoTimeOrNull,
  revoked_at: isoTimeOrNull,
});

export const oauthClientOutput = z.strictObject({
  client_id: z.string(),
  client_name: z.string().nullable(),
  redirect_uris: z.array(z.string()),
  source: z.enum(['registered', 'dynamic']).describe('registered by an administrator, or by the client itself (RFC 7591)'),
  confidential: z.boolean(),
  created_at: isoTime,
  last_used_at: isoTimeOrNull,
});

const iso = (value: Date | null | undefined) => (value ? value.toISOString() : null);

async function grantView(ctx: OperationContext, row: ApiToken) {
  const grant = row.oauthGrantId ? await ctx.em.findOne(OAuthRecord, { key: recordKey('Grant', row.oauthGrantId) }) : null;
  const resources = (grant?.payload as { resources?: Record<string, string> } | undefined)?.resources;
  return {
    id: row.id,
    user_id: row.user.id,
    client_id: row.oauthClientId ?? '',
    client_name: row.name.replace(/^OAuth: /, ''),
    resource: resources ? (Object.keys(resources)[0] ?? null) : null,
    permissions: row.scopes ?? null,
    created_at: row.createdAt.toISOString(),
    expires_at: iso(row.expiresAt),
    last_used_at: iso(row.lastUsedAt),
    revoked_at: iso(row.revokedAt),
  };
}

async function listGrants(ctx: OperationContext, userId: string, includeRevoked: boolean) {
  const rows = await ctx.em.find(
    ApiToken,
    { user: userId, oauthGrantId: { $ne: null }, ...(includeRevoked ? {} : { revokedAt: null }) },
    { orderBy: { createdAt: 'desc' } },
  );
  return { items: await Promise.all(rows.map((row) => grantView(ctx, row))) };
}

/** Ends one of a user's grants (see endGrant); idempotent. */
async function revokeGrant(ctx: OperationContext, userId: string, grantId: string) {
  const row = await ctx.em.findOne(ApiToken, { id: grantId, user: userId, oauthGrantId: { $ne: null } });
  if (!row) throw new OpError('not_found', `OAuth grant ${grantId} not found for this user`, { field: 'grant_id' });
  const view = await grantView(ctx, row);
  await endGrant(ctx.em, row.oauthGrantId!, ctx.now);
  return { ...view, revoked_at: (row.revokedAt ?? ctx.now).toISOString() };
}

export const listMyOauthGrants = operation({
  name: 'list_my_oauth_grants',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me/oauth_grants' },
  title: 'My connected applications',
  description: 'The applications you connected to Mandate with OAuth (claude.ai, ChatGPT, VS Code, Cursor, ...): which client, which endpoint, which permissions, last use. Revoked ones only with include_revoked.',
  input: z.strictObject({ include_revoked: z.boolean().default(false) }),
  output: itemsOf(oauthGrantOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    return listGrants(ctx, me(ctx).userId, input.include_revoked);
  },
});

export const revokeMyOauthGrant = operation({
  name: 'revoke_my_oauth_grant',
  servers: ['core'],
  route: { method: 'DELETE', path: '/api/me/oauth_grants/{grant_id}' },
  title: 'Disconnect an application',
  description: 'Revoke one of your OAuth grants (list_my_oauth_grants shows their ids): its access and refresh tokens stop working at once, on every instance. Idempotent.',
  input: z.strictObject({ grant_id: uuidField('your OAuth grant') }),
  output: oauthGrantOutput,
  permission: null,
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `oauth_grant:${input.grant_id}`,
  async run(ctx, input) {
    return revokeGrant(ctx, me(ctx).userId, input.grant_id);
  },
});

export const listUserOauthGrants = operation({
  name: 'list_user_oauth_grants',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users/{user_id}/oauth_grants' },
  title: "List a user's connected applications",
  description: "A user's OAuth grants: client, endpoint, permissions, last use (never a token). Revoked ones only with include_revoked.",
  input: z.strictObject({ user_id: uuidField('the user'), include_revoked: z.boolean().default(false) }),
  output: itemsOf(oauthGrantOutput),
  permission: 'tokens:read',
  effect: 'read',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    return listGrants(ctx, input.user_id, input.include_revoked);
  },
});

export const revokeUserOauthGrant = operation({
  name: 'revoke_user_oauth_grant',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/users/{user_id}/oauth_grants/{grant_id}' },
  title: "Revoke a user's OAuth grant",
  description: "Revoke one OAuth grant of a user: its tokens stop working at once, on every instance. Idempotent.",
  input: z.strictObject({ user_id: uuidField('the user'), grant_id: uuidField('the OAuth grant') }),
  output: oauthGrantOutput,
  permission: 'tokens:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `oauth_grant:${input.grant_id}`,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    return revokeGrant(ctx, input.user_id, input.grant_id);
  },
});

interface ClientPayload {
  client_id: string;
  client_name?: string;
  redirect_uris?: string[];
  token_endpoint_auth_method?: string;
  client_secret?: string;
}

function clientView(row: OAuthRecord) {
  const payload = row.payload as unknown as ClientPayload;
  return {
    client_id: payload.client_id,
    client_name: payload.client_name ?? null,
    redirect_uris: payload.redirect_uris ?? [],
    source: payload.client_id.startsWith('dcr-') ? ('dynamic' as const) : ('registered' as const),
    confidential: (payload.token_endpoint_auth_method ?? 'none') !== 'none',
    created_at: row.createdAt.toISOString(),
    last_used_at: iso(row.lastUsedAt),
  };
}

const redirectUriField = z.string().max(2000).refine(acceptableRedirectUri, REDIRECT_URI_RULE);

const isNative = (uris: string[]) => uris.every((uri) => uri.startsWith('http://') || !/^https?:/i.test(uri));

export const registerOauthClient = operation({
  name: 'register_oauth_client',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/oauth_clients' },
  title: 'Register an OAuth client',
  description:
    'Pre-register an OAuth client (the preferred way, before client metadata documents and dynamic registration): its name and exact redirect URIs. A public client (the default; ' +
    'PKCE protects it) has no secret; a confidential one gets a client_secret, in this result once and never again.',
  input: z.strictObject({
    client_name: z.string().trim().min(1, 'must not be empty').max(100),
    redirect_uris: z.array(redirectUriField).min(1, 'must list at least one redirect URI').max(10),
    confidential: z.boolean().default(false),
  }),
  output: oauthClientOutput.extend({ client_secret: z.string().nullable().describe('a confidential client\'s secret: shown once, never again') }),
  permission: 'tokens:write',
  effect: 'write',
  annotations: {},
  target: (input) => `oauth_client:${input.client_name}`,
  async run(ctx, input) {
    notThroughOAuth(ctx.caller, 'OAuth clients');
    const clientId = `mandate-${randomBytes(12).toString('hex')}`;
    const secret = input.confidential ? randomBytes(32).toString('base64url') : null;
    const payload: ClientPayload & Record<string, unknown> = {
      client_id: clientId,
      client_name: input.client_name,
      redirect_uris: input.redirect_uris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
      application_type: isNative(input.redirect_uris) ? 'native' : 'web',
      client_id_issued_at: Math.floor(ctx.now.getTime() / 1000),
      ...(secret ? { client_secret: ctx.vault.seal(secret, `oauth_client:${clientId}`) } : {}),
    };
    const row = ctx.em.create(OAuthRecord, { key: recordKey('Client', clientId), model: 'Client', payload, clientId, createdAt: ctx.now });
    await ctx.em.flush();
    return { ...clientView(row), client_secret: secret };
  },
});

export const listOauthClients = operation({
  name: 'list_oauth_clients',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/oauth_clients' },
  title: 'List OAuth clients',
  description: 'The OAuth clients registered here, by an administrator or by dynamic registration (never a secret). Clients known by a metadata document URL are fetched when used and not listed.',
  input: z.strictObject({}),
  output: itemsOf(oauthClientOutput),
  permission: 'tokens:read',
  effect: 'read',
  annotations: {},
  async run(ctx) {
    const rows = await ctx.em.find(OAuthRecord, { model: 'Client' }, { orderBy: { createdAt: 'desc' }, limit: 500 });
    return { items: rows.map(clientView) };
  },
});

export const deleteOauthClient = operation({
  name: 'delete_oauth_client',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/oauth_clients/{client_id}' },
  title: 'Delete an OAuth client',
  description: "Delete a registered OAuth client and revoke every grant users gave it: its tokens stop working at once.",
  input: z.strictObject({ client_id: z.string().trim().min(1).max(255) }),
  output: oauthClientOutput.extend({ grants_revoked: z.number().int() }),
  permission: 'tokens:write',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: (input) => `oauth_client:${input.client_id}`,
  async run(ctx, input) {
    const row = await ctx.em.findOne(OAuthRecord, { key: recordKey('Client', input.client_id) });
    if (!row) throw new OpError('not_found', `OAuth client ${input.client_id} is not registered here`, { field: 'client_id' });
    const view = clientView(row);
    return { ...view, grants_revoked: await endClientGrants(ctx.em, input.client_id, ctx.now) };
  },
});
