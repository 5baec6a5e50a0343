import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';

export const AUDIT_OUTCOMES = ['allowed', 'denied', 'invalid', 'failed'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/** One link of the chain a call acted under, e.g. the delegator whose permission was used. */
export interface OnBehalfOf {
  userId: string;
  via: 'delegation';
  delegationId: string;
}

// Audit rows outlive the users they name, so actors are plain ids plus a name snapshot.
// The table is partitioned by month of `at` (the migration and lib/audit/partitions.ts; the ORM
// leaves partitioning alone), so its key includes `at`. Each filter of query_audit has an index
// that also gives the newest-first order, so a page reads only the rows it returns.
const AuditEventSchema = defineEntity({
  name: 'AuditEvent',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    at: p.datetime().primary().onCreate(() => new Date()),
    actorId: p.uuid().nullable(),
    actorName: p.string().length(320),
    onBehalfOf: p.json<OnBehalfOf[]>().default('[]'),
    operation: p.string().length(100),
    permission: p.string().length(64).nullable(),
    projectKey: p.string().length(32).nullable(),
    target: p.string().length(200).nullable(),
    outcome: p.enum(AUDIT_OUTCOMES),
    errorCode: p.string().length(40).nullable(),
    message: p.text().nullable(),
    detail: p.json<Record<string, unknown>>().default('{}'),
    requestId: p.string().length(100).nullable(),
    sessionId: p.string().length(100).nullable(),
    clientAddress: p.string().length(100).nullable(),
  },
  indexes: [
    { name: 'audit_event_at_idx', properties: ['at', 'id'] },
    { name: 'audit_event_actor_idx', properties: ['actorId', 'at', 'id'] },
    { name: 'audit_event_operation_idx', properties: ['operation', 'at', 'id'] },
    { name: 'audit_event_outcome_idx', properties: ['outcome', 'at', 'id'] },
    { name: 'audit_event_target_idx', properties: ['target', 'at', 'id'] },
  ],
});

export class AuditEvent extends AuditEventSchema.class {}
AuditEventSchema.setClass(AuditEvent);
export { AuditEventSchema };
