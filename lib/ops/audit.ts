import type { Em } from '../db/orm.ts';
import { AuditEvent, type AuditOutcome, type OnBehalfOf } from '../db/entities/index.ts';
import type { Caller } from '../identity/caller.ts';
import type { GrantSource } from '../access/resolver.ts';

export interface AuditRecord {
  caller: Caller;
  operation: string;
  outcome: AuditOutcome;
  permission?: string | null;
  projectKey?: string | undefined;
  target?: string | undefined;
  via?: GrantSource | null;
  errorCode?: string;
  message?: string;
  detail: Record<string, unknown>;
  requestId?: string | undefined;
  sessionId?: string | undefined;
  clientAddress?: string | undefined;
}

function chainOf(via: GrantSource | null | undefined): OnBehalfOf[] {
  return via?.kind === 'delegation' ? [{ userId: via.delegatorId, via: 'delegation', delegationId: via.delegationId }] : [];
}

/** Adds one audit event to the unit of work of `em`; the caller flushes (or commits) it. */
export function addAuditEvent(em: Em, record: AuditRecord): void {
  const caller = record.caller;
  em.create(AuditEvent, {
    actorId: caller.kind === 'user' ? caller.userId : null,
    actorName: caller.kind === 'user' ? caller.email : `system:${caller.name}`,
    onBehalfOf: chainOf(record.via),
    operation: record.operation,
    permission: record.permission ?? null,
    projectKey: record.projectKey ?? null,
    target: record.target?.slice(0, 200) ?? null,
    outcome: record.outcome,
    errorCode: record.errorCode ?? null,
    message: record.message ?? null,
    detail: record.detail,
    requestId: record.requestId ?? null,
    sessionId: record.sessionId ?? null,
    clientAddress: record.clientAddress ?? null,
  });
}
