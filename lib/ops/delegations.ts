import { z } from 'zod';
import { Delegation, User } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';
import { checkDelegation } from '../access/delegation-rules.ts';
import { operation } from './operation.ts';
import { findProject } from './lookups.ts';
import { permissionField, projectKeyField, reasonField, uuidField } from './schemas.ts';
import { delegationView } from './views.ts';

export const createDelegation = operation({
  name: 'create_delegation',
  title: 'Delegate a permission',
  description:
    'Let another user (the delegate) use one permission you hold through a role, optionally only for one project and until an expiry time. ' +
    'Permissions you hold only through a delegation cannot be delegated again, and the delegation stops working the moment you lose the permission. ' +
    'Creating a delegation on behalf of another delegator (delegator_id) needs delegations:write. Returns the delegation.',
  input: z.strictObject({
    delegate_id: uuidField('the user receiving the permission'),
    permission: permissionField,
    project_key: projectKeyField.optional(),
    expires_at: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-31T18:00:00Z' }).optional(),
    reason: reasonField.default(''),
    delegator_id: uuidField('the delegating user').optional(),
  }),
  permission: null,
  annotations: {},
  target: (input) => `user:${input.delegate_id}`,
  async run(ctx, input) {
    const self = ctx.caller.kind === 'user' ? ctx.caller.userId : undefined;
    const delegatorId = input.delegator_id ?? self;
    if (!delegatorId) throw new OpError('invalid_input', 'delegator_id: required when no user is calling', { field: 'delegator_id' });
    if (delegatorId !== self) await ctx.require('delegations:write');
    const project = input.project_key ? await findProject(ctx.em, input.project_key) : null;
    const expiresAt = input.expires_at ? new Date(input.expires_at) : null;
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
    });
    await ctx.em.flush();
    return delegationView(delegation, project?.key ?? null);
  },
});

export const revokeDelegation = operation({
  name: 'revoke_delegation',
  title: 'Revoke a delegation',
  description:
    'End a delegation at once, on every instance. Its delegator may revoke it; anyone else needs delegations:write. Revoking an already revoked delegation returns it unchanged.',
  input: z.strictObject({ delegation_id: uuidField('the delegation') }),
  permission: null,
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `delegation:${input.delegation_id}`,
  async run(ctx, input) {
    const delegation = await ctx.em.findOne(Delegation, { id: input.delegation_id }, { populate: ['project'] });
    if (!delegation) throw new OpError('not_found', `delegation ${input.delegation_id} not found`, { field: 'delegation_id' });
    const self = ctx.caller.kind === 'user' ? ctx.caller.userId : undefined;
    if (delegation.delegator.id !== self) await ctx.require('delegations:write');
    if (!delegation.revokedAt) {
      delegation.revokedAt = ctx.now;
      delegation.revokedById = self ?? null;
      await ctx.em.flush();
    }
    return delegationView(delegation, delegation.project?.key ?? null);
  },
});
