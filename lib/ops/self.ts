import { z } from 'zod';
import { agentSessionOutput, assignmentOutput, delegationOutput, effectivePermissionsOutput, itemsOf, tokenOutput, userOutput } from './outputs.ts';
import { AgentSession, ApiToken, Delegation, RoleAssignment, User } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';
import type { UserCaller } from '../identity/caller.ts';
import { VERSION } from '../version.ts';
import { operation, type OperationContext } from './operation.ts';
import { describePermissions } from './effective.ts';
import { activeDelegations, isActiveDelegation } from './lookups.ts';
import { projectKeyField, uuidField } from './schemas.ts';
import { callerTokenExpiry, daysField, DEFAULT_TOKEN_DAYS, expiryIn, issueToken, listTokens, revokeToken, scopesField, tokenNameField } from './tokens.ts';
import { agentSessionView, assignmentView, delegationView, tokenView, userView } from './views.ts';

/** The calling user; operations about "me" make no sense for the local system caller. */
export function me(ctx: OperationContext): UserCaller {
  if (ctx.caller.kind !== 'user') throw new OpError('invalid_input', 'this operation acts on the calling user; call it with a user token');
  return ctx.caller;
}

export const whoami = operation({
  name: 'whoami',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me' },
  title: 'Who am I',
  description:
    'Who this session acts as: the user (id, name, email, type), its roles, the API token it authenticated with (name, scopes, expiry) and the session id. ' +
    'Call it first when unsure whose mandate you are acting under. get_my_permissions says what you may do.',
  input: z.strictObject({}),
  output: z.strictObject({ user: userOutput, roles: z.array(assignmentOutput), token: tokenOutput.omit({ last_used_at: true }).nullable(), session_id: z.string().nullable(), agent_session: agentSessionOutput.nullable() }),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx) {
    const caller = me(ctx);
    // Everything shown here changes only with an access change of the caller or of a role shown,
    // so it is computed once per change.
    let roleIds: string[] = [];
    return ctx.memo(caller.userId, `${caller.tokenId ?? ''}|${caller.sessionId ?? ''}`, async () => {
      const [user, assignments, token, agent] = await Promise.all([
        ctx.em.findOneOrFail(User, { id: caller.userId }),
        ctx.em.find(RoleAssignment, { user: caller.userId }, { populate: ['role', 'project'], orderBy: { createdAt: 'asc' } }),
        caller.tokenId ? ctx.em.findOne(ApiToken, { id: caller.tokenId }) : null,
        ctx.em.findOne(AgentSession, { agent: caller.userId }),
      ]);
      roleIds = assignments.map((assignment) => assignment.role.id);
      // last_used_at is left out: it moves without an access change.
      const { last_used_at: _lastUsed, ...tokenInfo } = token ? tokenView(token) : { last_used_at: null };
      return {
        user: userView(user),
        roles: assignments.map(assignmentView),
        token: token ? tokenInfo : null,
        session_id: caller.sessionId ?? null,
        agent_session: agent ? agentSessionView(agent) : null,
      };
    }, () => roleIds);
  },
});

export const getMyPermissions = operation({
  name: 'get_my_permissions',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me/permissions' },
  title: 'My effective permissions',
  description:
    'What you may do, globally or in one project (project_key), and where each permission comes from: one of your roles, or a delegation (who delegated it, until when). ' +
    "If you authenticated with a scoped API token, only the token's scopes count. This is exactly what the guard allows.",
  input: z.strictObject({ project_key: projectKeyField.optional() }),
  output: effectivePermissionsOutput,
  permission: null,
  effect: 'read',
  annotations: {},
  project: (input) => input.project_key,
  async run(ctx, input) {
    return describePermissions(ctx.em, ctx.resolver, me(ctx), input.project_key);
  },
});

export const listMyDelegations = operation({
  name: 'list_my_delegations',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me/delegations' },
  title: 'My delegations',
  description:
    'Delegations you gave (given) and received (received), each with its permission, project, expiry and reason. Active ones only unless include_inactive is true. ' +
    'Revoke one you gave with revoke_delegation.',
  input: z.strictObject({ include_inactive: z.boolean().default(false) }),
  output: z.strictObject({ given: z.array(delegationOutput.extend({ active: z.boolean() })), received: z.array(delegationOutput.extend({ active: z.boolean() })) }),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const { userId } = me(ctx);
    const active = input.include_inactive ? {} : activeDelegations(ctx.now);
    const rows = await ctx.em.find(
      Delegation,
      { $or: [{ delegator: userId }, { delegate: userId }], ...active },
      { populate: ['project'], orderBy: { createdAt: 'desc' } },
    );
    const view = (d: Delegation) => ({ ...delegationView(d, d.project?.key ?? null), active: isActiveDelegation(d, ctx.now) });
    return {
      given: rows.filter((d) => d.delegator.id === userId).map(view),
      received: rows.filter((d) => d.delegate.id === userId).map(view),
    };
  },
});

export const listMyTokens = operation({
  name: 'list_my_tokens',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me/tokens' },
  title: 'My API tokens',
  description: 'Your API tokens: name, prefix, scopes, expiry, last use (never the tokens themselves). Revoked ones only with include_revoked.',
  input: z.strictObject({ include_revoked: z.boolean().default(false) }),
  output: itemsOf(tokenOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    return listTokens(ctx, me(ctx).userId, input.include_revoked);
  },
});

export const createMyToken = operation({
  name: 'create_my_token',
  servers: ['core'],
  route: { method: 'POST', path: '/api/me/tokens' },
  title: 'Create an API token for myself',
  description:
    'Create an API token for yourself, e.g. for another client. It can carry at most what you can do now: scopes must be among your current permissions, and when you are ' +
    'calling with a scoped or expiring token, the new one gets no more scopes and no later expiry. expires_in_days 1-365 (default 90, or your token\'s expiry if sooner). ' +
    'The raw token is in this result once and never again.',
  input: z.strictObject({ name: tokenNameField, expires_in_days: daysField.optional(), scopes: scopesField }),
  output: tokenOutput.extend({ token: z.string().describe('the new token: shown once, never again') }),
  permission: null,
  effect: 'write',
  annotations: {},
  async run(ctx, input) {
    const caller = me(ctx);
    const current = await ctx.resolver.resolve(ctx.em, caller);
    const beyond = (input.scopes ?? []).filter((scope) => !current.grants.has(scope));
    if (beyond.length > 0) throw new OpError('invalid_input', `scopes: you do not hold ${beyond.join(', ')}`, { field: 'scopes' });
    const scopes = input.scopes ?? (current.scopes ? [...current.scopes] : undefined);
    const ceiling = await callerTokenExpiry(ctx);
    let expiresAt = expiryIn(ctx.now, input.expires_in_days ?? DEFAULT_TOKEN_DAYS);
    if (ceiling && expiresAt > ceiling) {
      if (input.expires_in_days !== undefined) {
        throw new OpError('invalid_input', `expires_in_days: cannot outlive the token you are calling with (it expires ${ceiling.toISOString()})`, {
          field: 'expires_in_days',
        });
      }
      expiresAt = ceiling;
    }
    const user = await ctx.em.findOneOrFail(User, { id: caller.userId });
    ctx.setTarget(`user:${user.id}`);
    return issueToken(ctx, user, { name: input.name, expiresAt, scopes });
  },
});

export const revokeMyToken = operation({
  name: 'revoke_my_token',
  servers: ['core'],
  route: { method: 'DELETE', path: '/api/me/tokens/{token_id}' },
  title: 'Revoke one of my API tokens',
  description: 'Revoke one of your API tokens at once (list_my_tokens shows their ids). Revoking the token this session uses ends your own access. Idempotent.',
  input: z.strictObject({ token_id: uuidField('your API token') }),
  output: tokenOutput,
  permission: null,
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `token:${input.token_id}`,
  async run(ctx, input) {
    return revokeToken(ctx, me(ctx).userId, input.token_id);
  },
});

export const health = operation({
  name: 'health',
  servers: ['core'],
  route: { method: 'GET', path: '/api/health' },
  title: 'Health',
  description: "Whether Mandate's database is reachable, how long a round trip takes, and the server's version.",
  input: z.strictObject({}),
  output: z.strictObject({ status: z.literal('ok'), version: z.string(), database: z.strictObject({ reachable: z.boolean(), server_version: z.string().nullable(), round_trip_ms: z.number() }) }),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx) {
    const started = performance.now();
    const row = await ctx.em.execute<{ server_version: string }>('show server_version', [], 'get');
    return {
      status: 'ok',
      version: VERSION,
      database: { reachable: true, server_version: row?.server_version ?? null, round_trip_ms: Math.round((performance.now() - started) * 100) / 100 },
    };
  },
});
