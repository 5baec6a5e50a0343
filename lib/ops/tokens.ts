import { z } from 'zod';
import { itemsOf, tokenOutput } from './outputs.ts';
import { callerUserId } from '../identity/caller.ts';
import { ApiToken, type User } from '../db/entities/index.ts';
import type { Permission } from '../access/permissions.ts';
import { OpError } from '../errors.ts';
import { generateApiToken } from '../identity/tokens.ts';
import { operation, type OperationContext } from './operation.ts';
import { findUser } from './lookups.ts';
import { permissionField, uuidField } from './schemas.ts';
import { tokenView } from './views.ts';
import { notThroughOAuth } from './guards.ts';

const DAY_MS = 86_400_000;

export const tokenNameField = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
export const DEFAULT_TOKEN_DAYS = 90;
export const daysField = z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(365, 'must be at most 365 days');
export const scopesField = z.array(permissionField).min(1, 'must list at least one permission, or be left out').max(50).optional();

export interface TokenRequest {
  name: string;
  expiresAt: Date;
  scopes?: readonly Permission[] | undefined;
}

/**
 * Issues a token for `user`; the raw value is in the result once and stored only as a hash. The
 * one place tokens are minted, so P3 holds here for every operation: a call acting through a
 * delegation (every call of an agent) mints a token that expires no later than that delegation
 * and stops working the moment it does (revoked, expired, or its delegator losing the permission).
 */
export async function issueToken(ctx: OperationContext, user: User, request: TokenRequest) {
  notThroughOAuth(ctx.caller, 'API tokens or agent sessions');
  if (!user.active) throw new OpError('invalid_input', 'user_id: the user is deactivated', { field: 'user_id' });
  const source = ctx.via?.kind === 'delegation' ? ctx.via : null;
  const expiresAt = source?.expiresAt && source.expiresAt < request.expiresAt ? source.expiresAt : request.expiresAt;
  if (request.scopes) {
    const held = await ctx.resolver.resolve(ctx.em, { userId: user.id });
    const beyond = request.scopes.filter((scope) => !held.grants.has(scope));
    if (beyond.length > 0) {
      throw new OpError('invalid_input', `scopes: the user does not hold ${beyond.join(', ')}`, { field: 'scopes' });
    }
  }
  const secret = generateApiToken();
  const token = ctx.em.create(ApiToken, {
    user,
    name: request.name,
    prefix: secret.prefix,
    hash: secret.hash,
    scopes: request.scopes ? [...new Set(request.scopes)] : null,
    expiresAt,
    createdById: callerUserId(ctx.caller),
    sourceDelegationId: source?.delegationId ?? null,
  });
  await ctx.em.flush();
  return { ...tokenView(token), token: secret.raw };
}

export const expiryIn = (now: Date, days: number) => new Date(now.getTime() + days * DAY_MS);

/** When the token the caller is calling with expires (null: no token, or one that never expires). */
export async function callerTokenExpiry(ctx: OperationContext): Promise<Date | null> {
  if (ctx.caller.kind !== 'user' || !ctx.caller.tokenId) return null;
  return (await ctx.em.findOne(ApiToken, { id: ctx.caller.tokenId }))?.expiresAt ?? null;
}

export async function revokeToken(ctx: OperationContext, userId: string, tokenId: string) {
  // OAuth grants have their own tools (list_my_oauth_grants, revoke_my_oauth_grant).
  const token = await ctx.em.findOne(ApiToken, { id: tokenId, user: userId, oauthGrantId: null });
  if (!token) throw new OpError('not_found', `token ${tokenId} not found for this user`, { field: 'token_id' });
  if (!token.revokedAt) {
    token.revokedAt = ctx.now;
    await ctx.em.flush();
  }
  return tokenView(token);
}

export async function listTokens(ctx: OperationContext, userId: string, includeRevoked: boolean) {
  const rows = await ctx.em.find(ApiToken, includeRevoked ? { user: userId, oauthGrantId: null } : { user: userId, revokedAt: null, oauthGrantId: null }, { orderBy: { createdAt: 'desc' } });
  return { items: rows.map(tokenView) };
}

export const createTokenForUser = operation({
  name: 'create_token_for_user',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users/{user_id}/tokens' },
  title: 'Create an API token for a user',
  description:
    'Create an API token for a user (for example an agent or service account). expires_in_days is 1-365 (default 90); scopes narrow the token to some of the ' +
    "user's permissions and must be among them. The raw token is in this result once and can never be shown again: hand it to its owner now.",
  input: z
    .strictObject({
      user_id: uuidField('the user'),
      name: tokenNameField,
      expires_in_days: daysField.optional(),
      expires_days: daysField.optional().describe('the same as expires_in_days'),
      scopes: scopesField,
    })
    .refine((input) => input.expires_in_days === undefined || input.expires_days === undefined || input.expires_in_days === input.expires_days, {
      message: 'expires_in_days and expires_days disagree; give one',
      path: ['expires_days'],
    }),
  output: tokenOutput.extend({ token: z.string().describe('the new token: shown once, never again') }),
  permission: 'tokens:write',
  effect: 'write',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    const days = input.expires_in_days ?? input.expires_days ?? DEFAULT_TOKEN_DAYS;
    return issueToken(ctx, user, { name: input.name, expiresAt: expiryIn(ctx.now, days), scopes: input.scopes });
  },
});

export const listUserTokens = operation({
  name: 'list_user_tokens',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users/{user_id}/tokens' },
  title: "List a user's API tokens",
  description: "List a user's API tokens: name, prefix, scopes, expiry, last use. Never the tokens themselves. Revoked ones only with include_revoked.",
  input: z.strictObject({ user_id: uuidField('the user'), include_revoked: z.boolean().default(false) }),
  output: itemsOf(tokenOutput),
  permission: 'tokens:read',
  effect: 'read',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    return listTokens(ctx, input.user_id, input.include_revoked);
  },
});

export const revokeUserToken = operation({
  name: 'revoke_user_token',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/users/{user_id}/tokens/{token_id}' },
  title: "Revoke a user's API token",
  description: 'Revoke one API token of a user at once, on every instance: its next call fails. Idempotent. Returns the token metadata.',
  input: z.strictObject({ user_id: uuidField('the user'), token_id: uuidField('the API token') }),
  output: tokenOutput,
  permission: 'tokens:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `token:${input.token_id}`,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    return revokeToken(ctx, input.user_id, input.token_id);
  },
});
