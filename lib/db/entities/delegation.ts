import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';
import { Project } from './project.ts';
import { accessChangeTrigger } from './access-change.ts';

const DelegationSchema = defineEntity({
  name: 'Delegation',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    delegator: () => p.manyToOne(User).deleteRule('cascade').index('delegation_delegator_idx'),
    delegate: () => p.manyToOne(User).deleteRule('cascade').index('delegation_delegate_idx'),
    permission: p.string().length(64),
    project: () => p.manyToOne(Project).nullable().deleteRule('cascade'),
    expiresAt: p.datetime().nullable(),
    reason: p.text().default(''),
    createdAt: p.datetime().onCreate(() => new Date()),
    revokedAt: p.datetime().nullable(),
    revokedById: p.uuid().nullable(),
    // Who created it, when that is not its delegator: an agent delegating in its spawner's name
    // (P3: such a delegation ends with the agent session).
    createdById: p.uuid().nullable(),
  },
  // The delegate's permissions change; the delegator's do not.
  indexes: [{ name: 'delegation_created_idx', properties: ['createdAt', 'id'] }],
  triggers: [accessChangeTrigger('delegation_access_change', ['insert', 'update', 'delete'], 'delegate_id')],
});

export class Delegation extends DelegationSchema.class {}
DelegationSchema.setClass(Delegation);
export { DelegationSchema };
