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
const AuditEventSchema = defineEntity({
  name: 'AuditEvent',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    at: p.datetime().onCreate(() => new Date()).index('audit_event_at_idx'),
    actorId: p.uuid().nullable().index('audit_event_actor_idx'),
    actorName: p.string().length(320),
    onBehalfOf: p.json<OnBehalfOf[]>().default('[]'),
    operation: p.string().length(100).index('audit_event_operation_idx'),
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
});

export class AuditEvent extends AuditEventSchema.class {}
AuditEventSchema.setClass(AuditEvent);
export { AuditEventSchema };
