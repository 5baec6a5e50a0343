import { z } from 'zod';
import { assignmentOutput, cursorPage, delegationOutput, tokenOutput, userOutput } from './outputs.ts';
import { callerUserId } from '../identity/caller.ts';
import { AgentSession, ApiToken, Delegation, McpInstallation, RoleAssignment, User, USER_TYPES } from '../db/entities/index.ts';
import { conflict, OpError } from '../errors.ts';
import { passwordSchema } from '../identity/passwords.ts';
import { mintPasswordHash } from './credentials.ts';
import { deactivateAccount, endAgentSession, endSessions } from '../identity/account-lifecycle.ts';
import { operation } from './operation.ts';
import { grantRole } from './roles.ts';
import { keepAnAdmin, notSelf } from './guards.ts';
import { activeDelegations, findUser } from './lookups.ts';
import { cursorField, limitField, offsetField, page, pageStart } from './pagination.ts';
import { displayNameField, emailField, userNameField, uuidField } from './schemas.ts';
import { assignmentView, delegationView, tokenView, userView } from './views.ts';

function nameFromEmail(email: string): string {
  const local = email.split('@')[0]!.replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '');
  return (local.length >= 2 ? local : `user-${local}`).slice(0, 64);
}

const userIdInput = z.strictObject({ user_id: uuidField('the user') });
const userTarget = (input: { user_id: string }) => `user:${input.user_id}`;

export const createUser = operation({
  name: 'create_user',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users' },
  title: 'Create a user',
  description:
    'Create a user (human, agent or service) with an email, optional login name, display name and password, and optionally give it global roles at once (that also needs roles:write). ' +
    'Fails with a conflict if the email or name is taken. Returns the new user.',
  input: z.strictObject({
    email: emailField,
    name: userNameField.optional(),
    display_name: displayNameField.optional(),
    type: z.enum(USER_TYPES).optional(),
    user_type: z.enum(USER_TYPES).optional().describe('the same as type (the name the admin agents\' contract uses)'),
    password: passwordSchema.optional(),
    roles: z.array(z.string().min(1).max(64)).max(20).optional(),
  }).refine((input) => input.type === undefined || input.user_type === undefined || input.type === input.user_type, {
    message: 'type and user_type disagree; give one',
    path: ['user_type'],
  }),
  output: userOutput.extend({ roles: z.array(z.string()).describe('the names of the global roles given') }),
  permission: 'users:write',
  effect: 'write',
  annotations: {},
  async run(ctx, input) {
    if (input.roles?.length) await ctx.require('roles:write');
    const name = input.name ?? nameFromEmail(input.email);
    // A friendly answer for the common case; the unique constraints settle races (same message).
    const taken = await ctx.em.findOne(User, { $or: [{ email: input.email }, { name }] });
    if (taken) {
      throw taken.email === input.email
        ? conflict('a user with this email already exists', 'email')
        : conflict(`a user with this name already exists${input.name ? '' : '; pass another name'}`, 'name');
    }
    const user = ctx.em.create(User, {
      name,
      email: input.email,
      displayName: input.display_name ?? name,
      type: input.type ?? input.user_type ?? 'human',
      passwordHash: input.password ? await mintPasswordHash(ctx, input.password) : null,
      active: true,
      createdById: callerUserId(ctx.caller),
    });
    await ctx.em.flush();
    ctx.setTarget(`user:${user.id}`);
    const roles: string[] = [];
    for (const roleName of input.roles ?? []) {
      // Asked afresh: the password's hash took a while since the runner resolved the caller's permissions.
      const { role } = await grantRole(ctx, user, roleName, null, { fresh: input.password !== undefined });
      roles.push(role.name);
    }
    return { ...userView(user), roles };
  },
});

export const listUsers = operation({
  name: 'list_users',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users' },
  title: 'List users',
  description:
    'List users, oldest first, a page at a time (limit up to 100; pass next_cursor back as cursor for the next page). ' +
    'search matches part of the name, email or display name; type and active filter. offset pages by position instead of cursor. Returns {items, next_cursor} (and next_offset with offset).',
  input: z.strictObject({
    search: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    type: z.enum(USER_TYPES).optional(),
    active: z.boolean().optional(),
    limit: limitField,
    cursor: cursorField,
    offset: offsetField,
  }),
  output: cursorPage(userOutput),
  permission: 'users:read',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const start = pageStart(input, 'createdAt');
    const where: Record<string, unknown>[] = [start.where];
    if (input.type) where.push({ type: input.type });
    if (input.active !== undefined) where.push({ active: input.active });
    if (input.search) {
      const like = `%${input.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push({ $or: [{ name: { $ilike: like } }, { email: { $ilike: like } }, { displayName: { $ilike: like } }] });
    }
    const rows = await ctx.em.find(User, { $and: where }, { orderBy: { createdAt: 'asc', id: 'asc' }, limit: input.limit + 1, ...(start.offset ? { offset: start.offset } : {}) });
    const { items, ...rest } = page(rows, input.limit, (u) => u.createdAt, start.offset);
    return { items: items.map(userView), ...rest };
  },
});

export const getUser = operation({
  name: 'get_user',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users/{user_id}' },
  title: 'Get a user',
  description:
    "Get one user with its role assignments, its active delegations (given and received) and its API tokens' metadata (never the tokens themselves). " +
    'Use get_user_permissions for what the user may actually do.',
  input: userIdInput,
  output: userOutput.extend({ roles: z.array(assignmentOutput), delegations: z.strictObject({ given: z.array(delegationOutput), received: z.array(delegationOutput) }), tokens: z.array(tokenOutput.extend({ expired: z.boolean() })), agent_session_id: z.string().nullable() }),
  permission: 'users:read',
  effect: 'read',
  annotations: {},
  target: userTarget,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    const [assignments, delegations, tokens, agent] = await Promise.all([
      ctx.em.find(RoleAssignment, { user }, { populate: ['role', 'project'], orderBy: { createdAt: 'asc' } }),
      ctx.em.find(
        Delegation,
        { $or: [{ delegator: user }, { delegate: user }], ...activeDelegations(ctx.now) },
        { populate: ['project'], orderBy: { createdAt: 'asc' } },
      ),
      ctx.em.find(ApiToken, { user, revokedAt: null }, { orderBy: { createdAt: 'asc' } }),
      user.type === 'agent' ? ctx.em.findOne(AgentSession, { agent: user }) : null,
    ]);
    const view = (d: Delegation) => delegationView(d, d.project?.key ?? null);
    return {
      ...userView(user),
      roles: assignments.map(assignmentView),
      delegations: {
        given: delegations.filter((d) => d.delegator.id === user.id).map(view),
        received: delegations.filter((d) => d.delegate.id === user.id).map(view),
      },
      tokens: tokens.map(tokenView).map((t) => ({ ...t, expired: t.expires_at !== null && t.expires_at <= ctx.now.toISOString() })),
      agent_session_id: agent?.id ?? null,
    };
  },
});

export const updateUser = operation({
  name: 'update_user',
  servers: ['admin'],
  route: { method: 'PATCH', path: '/api/admin/users/{user_id}' },
  title: 'Update a user',
  description: "Change a user's email, login name or display name (fields left out stay as they are). Fails with a conflict if the email or name is taken. Returns the user.",
  input: z.strictObject({ user_id: uuidField('the user'), email: emailField.optional(), name: userNameField.optional(), display_name: displayNameField.optional() }),
  output: userOutput,
  permission: 'users:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: userTarget,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    if (input.email !== undefined) user.email = input.email;
    if (input.name !== undefined) user.name = input.name;
    if (input.display_name !== undefined) user.displayName = input.display_name;
    await ctx.em.flush();
    return userView(user);
  },
});

export const deactivateUser = operation({
  name: 'deactivate_user',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users/{user_id}/deactivate' },
  title: 'Deactivate a user',
  description:
    'Deactivate a user: it can no longer sign in, all its API tokens are revoked and all its sessions end at once, on every instance (its running servers refuse their next call). ' +
    'Reversible with reactivate_user (tokens stay revoked; issue new ones). You cannot deactivate yourself or the last admin. Returns the user and what was ended.',
  input: userIdInput,
  output: userOutput.extend({ tokens_revoked: z.number().int(), sessions_ended: z.number().int() }),
  permission: 'users:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: userTarget,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    notSelf(ctx.caller, input.user_id, 'deactivate');
    const user = await findUser(ctx.em, input.user_id);
    await keepAnAdmin(ctx.em, user.id, 'deactivating this user');
    const ended = await deactivateAccount(ctx.em, user, ctx.now, 'user deactivated');
    return { ...userView(user), ...ended };
  },
});

export const reactivateUser = operation({
  name: 'reactivate_user',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users/{user_id}/reactivate' },
  title: 'Reactivate a user',
  description:
    'Reactivate a deactivated user so it can sign in again. Its old API tokens stay revoked: create new ones with create_token_for_user. Returns the user.',
  input: userIdInput,
  output: userOutput,
  permission: 'users:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: userTarget,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    if (user.type === 'agent' && (await ctx.em.count(AgentSession, { agent: user }))) {
      throw conflict('an agent identity ends with its agent session; start a new agent session instead', 'user_id');
    }
    user.active = true;
    user.deactivatedAt = null;
    await ctx.em.flush();
    return userView(user);
  },
});

export const deleteUser = operation({
  name: 'delete_user',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/users/{user_id}' },
  title: 'Delete a user',
  description:
    'Delete a user for good, with its role assignments, tokens, sessions and personal MCP server installations (audit events keep its id and name). ' +
    'Refused while it owns things others depend on (active delegations it gave, running agent sessions it started) unless cascade is true, which ends those too. ' +
    'Prefer deactivate_user when in doubt: it is reversible. Returns what was removed.',
  input: z.strictObject({ user_id: uuidField('the user'), cascade: z.boolean().default(false) }),
  output: userOutput.extend({ deleted: z.literal(true), delegations_removed: z.number().int(), agent_sessions_ended: z.number().int(), mcp_servers_removed: z.number().int() }),
  permission: 'users:write',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: userTarget,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    notSelf(ctx.caller, input.user_id, 'delete');
    const user = await findUser(ctx.em, input.user_id);
    await keepAnAdmin(ctx.em, user.id, 'deleting this user');
    const [delegations, agents, installations] = await Promise.all([
      ctx.em.count(Delegation, { delegator: user, ...activeDelegations(ctx.now) }),
      ctx.em.find(AgentSession, { spawner: user, endedAt: null }),
      ctx.em.count(McpInstallation, { user, scope: 'personal' }),
    ]);
    if ((delegations > 0 || agents.length > 0) && !input.cascade) {
      throw conflict(
        `the user owns ${delegations} active delegation(s) and ${agents.length} running agent session(s); revoke them first or pass cascade: true`,
        'cascade',
      );
    }
    for (const agent of agents) await endAgentSession(ctx.em, agent, ctx.now, 'spawner deleted');
    // Personal MCP server installations go with the account (a foreign key cascade).
    const removed = { delegations_removed: delegations, agent_sessions_ended: agents.length, mcp_servers_removed: installations };
    const view = userView(user);
    ctx.em.remove(user);
    await ctx.em.flush();
    return { ...view, deleted: true, ...removed };
  },
});

export const resetPassword = operation({
  name: 'reset_password',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users/{user_id}/password' },
  title: "Reset a user's password",
  description:
    "Set a new password for a user (8-1024 characters). Sessions the user opened with its old password end; API tokens keep working. The password is never shown again or logged. Returns the user.",
  input: z.strictObject({ user_id: uuidField('the user'), password: passwordSchema }),
  output: userOutput.extend({ sessions_ended: z.number().int() }),
  permission: 'users:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: userTarget,
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    if (!user.active) throw new OpError('invalid_input', 'user_id: the user is deactivated; reactivate it first', { field: 'user_id' });
    user.passwordHash = await mintPasswordHash(ctx, input.password);
    await ctx.em.flush();
    const sessionsEnded = await endSessions(ctx.em, user.id, ctx.now, 'password reset', { passwordOnly: true });
    return { ...userView(user), sessions_ended: sessionsEnded };
  },
});
