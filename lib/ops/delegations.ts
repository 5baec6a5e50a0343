import { z } from 'zod';
import { cursorPage, delegationOutput } from './outputs.ts';
import { callerUserId } from '../identity/caller.ts';
import { AgentSession, Delegation, User } from '../db/entities/index.ts';
import type { Permission } from '../access/permissions.ts';
import type { UserCaller } from '../identity/caller.ts';
import { OpError } from '../errors.ts';
import { checkDelegation } from '../access/delegation-rules.ts';
import { operation, type OperationContext } from './operation.ts';
import { activeDelegations, findProject, isActiveDelegation } from './lookups.ts';
import { permissionField, projectKeyField, reasonField, uuidField } from './schemas.ts';
import { delegationView } from './views.ts';
import { cursorField, limitField, offsetField, page, pageStart } from './pagination.ts';
import { notThroughOAuth } from './guards.ts';

export const createDelegation = operation({
  name: 'create_delegation',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/delegations' },
  title: 'Delegate a permission',
  description:
    'Let another user (the delegate) use one permission you hold through a role, optionally only for one project and until an expiry time. ' +
    'Permissions you hold only through a delegation cannot be delegated again, and the delegation stops working the moment you lose the permission. ' +
    'A delegation is always given in your own name: delegator_id, if given, must be your own id. An agent delegates in its spawner\'s name what its spawner delegated to it, until its session ends. Returns the delegation.',
  input: z.strictObject({
    delegate_id: uuidField('the user receiving the permission'),
    permission: permissionField,
    project_key: projectKeyField.optional(),
    project_id: uuidField('the project').optional(),
    expires_at: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-31T18:00:00Z' }).optional(),
    reason: reasonField.default(''),
    delegator_id: uuidField('the delegating user').optional(),
  }).refine((input) => input.project_key === undefined || input.project_id === undefined, { message: 'give project_key or project_id, not both', path: ['project_id'] }),
  output: delegationOutput,
  permission: null,
  effect: 'write',
  annotations: {},
  target: (input) => `user:${input.delegate_id}`,
  async run(ctx, input) {
    notThroughOAuth(ctx.caller, 'delegations');
    const self = callerUserId(ctx.caller);
    const projectRef = input.project_key ?? input.project_id;
    const project = projectRef ? await findProject(ctx.em, projectRef, input.project_id ? 'project_id' : 'project_key') : null;
    const agent = self && ctx.caller.kind === 'user' && ctx.caller.type === 'agent' ? await liveAgentSession(ctx, self) : null;
    // An agent delegates in its spawner's name (the only name it acts in), see agentDelegation.
    const delegatorId = agent?.spawner?.id ?? self ?? input.delegator_id;
    if (!delegatorId) throw new OpError('invalid_input', 'delegator_id: required when no user is calling', { field: 'delegator_id' });
    // P2: a delegation is always in the caller's own name (only the local operator may name another).
    if (self !== null && input.delegator_id !== undefined && input.delegator_id !== delegatorId) {
      throw new OpError('forbidden', 'permission denied: a delegation is always given in your own name (an agent\'s: its spawner\'s); leave delegator_id out (delegations:write lets you list and revoke anyone\'s, never create one for someone else)', { field: 'delegator_id' });
    }
    if (self !== null && input.delegate_id === self) throw new OpError('invalid_input', 'delegate_id: you cannot delegate to yourself', { field: 'delegate_id' });
    await onlyFromItsSpawner(ctx, input.delegate_id, delegatorId);
    let expiresAt = input.expires_at ? new Date(input.expires_at) : null;
    if (agent) expiresAt = await agentDelegation(ctx, agent, input.permission, project?.id ?? null, expiresAt);
    await checkDelegation(
      ctx.em,
      ctx.resolver,
      { delegatorId, delegateId: input.delegate_id, permission: input.permission, projectId: project?.id ?? null, projectKey: project?.key, expiresAt },
      ctx.now,
    );
    const delegation = ctx.em.create(Delegation, {
      delegator: ctx.em.getReference(User, delegatorId),
      delegate: ctx.em.getReference(User, input.delegate_id),
      permission: input.permission,
      project,
      expiresAt,
      reason: input.reason,
      createdById: agent ? self : null,
    });
    await ctx.em.flush();
    return delegationView(delegation, project?.key ?? null);
  },
});

/**
 * An agent holds only delegations from the user who started its session (its mandate, P3): one
 * from anyone else would ride on the session, and on the tracker connections its spawner lent it.
 */
async function onlyFromItsSpawner(ctx: OperationContext, delegateId: string, delegatorId: string) {
  const session = await ctx.em.findOne(AgentSession, { agent: delegateId }, { orderBy: { createdAt: 'desc' } });
  if (session && session.spawner?.id !== delegatorId) {
    throw new OpError('forbidden', 'permission denied: an agent holds only delegations from the user who started its session; start an agent session of your own instead', { field: 'delegate_id' });
  }
}

function liveAgentSession(ctx: OperationContext, agentId: string) {
  return ctx.em.findOne(AgentSession, { agent: agentId, endedAt: null, expiresAt: { $gt: ctx.now } });
}

/**
 * P3 for an agent's delegations: it can only pass on what its spawner delegated to it (never
 * re-delegating anything else), and what it gives ends with its session (expiry capped here,
 * revoked by end_agent_session).
 */
async function agentDelegation(ctx: OperationContext, agent: AgentSession, permission: Permission, projectId: string | null, asked: Date | null): Promise<Date> {
  const held = await ctx.resolver.resolve(ctx.em, ctx.caller as UserCaller, projectId);
  const fromSpawner = (held.grants.get(permission) ?? []).some((source) => source.kind === 'delegation' && source.delegatorId === agent.spawner?.id);
  if (!fromSpawner) {
    throw new OpError('forbidden', `cannot delegate: an agent passes on only what its spawner delegated to it, and ${permission} is not among that here`, { field: 'permission' });
  }
  return asked && asked < agent.expiresAt ? asked : agent.expiresAt;
}

export const revokeDelegation = operation({
  name: 'revoke_delegation',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/delegations/{delegation_id}' },
  title: 'Revoke a delegation',
  description:
    'End a delegation at once, on every instance. Its delegator may revoke it; anyone else needs delegations:write. Revoking an already revoked delegation returns it unchanged.',
  input: z.strictObject({ delegation_id: uuidField('the delegation') }),
  output: delegationOutput,
  permission: null,
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `delegation:${input.delegation_id}`,
  async run(ctx, input) {
    const delegation = await ctx.em.findOne(Delegation, { id: input.delegation_id }, { populate: ['project'] });
    if (!delegation) throw new OpError('not_found', `delegation ${input.delegation_id} not found`, { field: 'delegation_id' });
    const self = callerUserId(ctx.caller);
    if (delegation.delegator.id !== self) await ctx.require('delegations:write');
    if (!delegation.revokedAt) {
      delegation.revokedAt = ctx.now;
      delegation.revokedById = self ?? null;
      await ctx.em.flush();
    }
    return delegationView(delegation, delegation.project?.key ?? null);
  },
});

export const listDelegations = operation({
  name: 'list_delegations',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/delegations' },
  title: 'List delegations',
  description:
    'List delegations, newest first, a page at a time (cursor, or offset); filter by delegator_id, delegate_id, user_id (either side), permission, and include_inactive to include revoked and expired ones. Returns {items, next_cursor} (and next_offset with offset).',
  input: z.strictObject({
    delegator_id: uuidField('the delegating user').optional(),
    delegate_id: uuidField('the receiving user').optional(),
    user_id: uuidField('a user, as delegator or delegate').optional(),
    permission: permissionField.optional(),
    include_inactive: z.boolean().default(false),
    limit: limitField,
    cursor: cursorField,
    offset: offsetField,
  }),
  output: cursorPage(delegationOutput),
  permission: 'delegations:read',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const start = pageStart(input, 'createdAt', 'desc');
    const where: Record<string, unknown>[] = [start.where];
    if (input.delegator_id) where.push({ delegator: input.delegator_id });
    if (input.delegate_id) where.push({ delegate: input.delegate_id });
    if (input.user_id) where.push({ $or: [{ delegator: input.user_id }, { delegate: input.user_id }] });
    if (input.permission) where.push({ permission: input.permission });
    if (!input.include_inactive) where.push(activeDelegations(ctx.now));
    const rows = await ctx.em.find(Delegation, { $and: where }, { populate: ['project'], orderBy: { createdAt: 'desc', id: 'desc' }, limit: input.limit + 1, ...(start.offset ? { offset: start.offset } : {}) });
    const { items, ...rest } = page(rows, input.limit, (d) => d.createdAt, start.offset);
    return { items: items.map((d) => delegationView(d, d.project?.key ?? null)), ...rest };
  },
});

export const getDelegation = operation({
  name: 'get_delegation',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/delegations/{delegation_id}' },
  title: 'Get a delegation',
  description: 'Get one delegation. Its delegator and delegate may always see it; anyone else needs delegations:read.',
  input: z.strictObject({ delegation_id: uuidField('the delegation') }),
  output: delegationOutput.extend({ active: z.boolean() }),
  permission: null,
  effect: 'read',
  annotations: {},
  target: (input) => `delegation:${input.delegation_id}`,
  async run(ctx, input) {
    const delegation = await ctx.em.findOne(Delegation, { id: input.delegation_id }, { populate: ['project'] });
    const self = callerUserId(ctx.caller);
    // Outsiders get the permission check before learning whether the id exists.
    if (!delegation || (delegation.delegator.id !== self && delegation.delegate.id !== self)) await ctx.require('delegations:read');
    if (!delegation) throw new OpError('not_found', `delegation ${input.delegation_id} not found`, { field: 'delegation_id' });
    return { ...delegationView(delegation, delegation.project?.key ?? null), active: isActiveDelegation(delegation, ctx.now) };
  },
});
