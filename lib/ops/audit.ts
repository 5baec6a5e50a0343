import type { Em, Orm } from '../db/orm.ts';
import type { Logger } from '../log.ts';
import { uuidv7 } from '../ids.ts';
import { AuditEvent, type AuditOutcome, type OnBehalfOf } from '../db/entities/index.ts';
import type { Caller } from '../identity/caller.ts';
import type { GrantSource } from '../access/resolver.ts';

export interface AuditRecord {
  /** Stamped when the event happens (a batched event is written later). */
  id?: string;
  at?: Date;
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
  em.create(AuditEvent, auditRow(record));
}

function auditRow(record: AuditRecord) {
  const caller = record.caller;
  return {
    id: record.id ?? uuidv7(),
    at: record.at ?? new Date(),
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
  };
}

/** audit_event's columns as the database names them; the JSON ones as JSON text. */
interface AuditColumns {
  id: string;
  at: Date;
  actor_id: string | null;
  actor_name: string;
  on_behalf_of: string;
  operation: string;
  permission: string | null;
  project_key: string | null;
  target: string | null;
  outcome: AuditOutcome;
  error_code: string | null;
  message: string | null;
  detail: string;
  request_id: string | null;
  session_id: string | null;
  client_address: string | null;
}

function auditColumns(record: AuditRecord): AuditColumns {
  const row = auditRow(record);
  return {
    id: row.id,
    at: row.at,
    actor_id: row.actorId,
    actor_name: row.actorName,
    on_behalf_of: JSON.stringify(row.onBehalfOf),
    operation: row.operation,
    permission: row.permission,
    project_key: row.projectKey,
    target: row.target,
    outcome: row.outcome,
    error_code: row.errorCode,
    message: row.message,
    detail: JSON.stringify(row.detail),
    request_id: row.requestId,
    session_id: row.sessionId,
    client_address: row.clientAddress,
  };
}

/**
 * Audit events of calls that changed nothing (read-only operations, refusals, invalid input) are
 * written in batches, a few milliseconds after the call, instead of costing every call its own
 * transaction. Events of writing operations never come here: they commit with the change.
 * Flushed on close; a failed flush is logged (counts only) and retried with the next batch.
 */
export class AuditWriter {
  private queue: AuditRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly orm: Orm;
  private readonly log: Logger;
  private readonly maxDelayMs: number;
  private readonly maxBatch: number;

  constructor(orm: Orm, log: Logger, options: { maxDelayMs?: number; maxBatch?: number } = {}) {
    this.orm = orm;
    this.log = log;
    this.maxDelayMs = options.maxDelayMs ?? 20;
    this.maxBatch = options.maxBatch ?? 500;
  }

  enqueue(record: AuditRecord): void {
    this.queue.push({ ...record, id: uuidv7(), at: new Date() });
    if (this.queue.length >= this.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.maxDelayMs).unref();
  }

  /** Writes everything enqueued so far; resolves once it is in the database. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.flushing.then(async () => {
      if (batch.length === 0) return;
      try {
        // One multi-row insert with bound parameters, through the ORM's query builder (Kysely)
        // rather than insertMany: these rows are never read back here, and insertMany's metadata
        // work and client-side query formatting cost ~50 us of CPU per request (bench/http.bench.ts).
        await this.orm.em.fork().getKysely<{ audit_event: AuditColumns }>().insertInto('audit_event').values(batch.map(auditColumns)).execute();
      } catch (error) {
        this.queue.unshift(...batch);
        this.log.error({ events: batch.length, err: { type: (error as Error).name } }, 'could not write audit events; will retry');
      }
    });
    return this.flushing;
  }
}
