import type { Em, Orm } from '../db/orm.ts';
import type { Logger } from '../log.ts';
import { uuidv7 } from '../ids.ts';
import { AUDIT_OUTCOMES, AuditEvent, type AuditOutcome, type OnBehalfOf } from '../db/entities/index.ts';
import type { Caller } from '../identity/caller.ts';
import type { GrantSource } from '../access/resolver.ts';
import { sanitiseJson, sanitiseOptional, sanitiseText } from './sanitise.ts';
import { databaseUnavailable } from '../errors.ts';

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
  const { detailText: _text, ...row } = auditRow(record);
  em.create(AuditEvent, row);
}

// Every value is sanitised and cut to its column (see sanitise.ts): no input can stop its event
// being written.
function auditRow(record: AuditRecord) {
  const caller = record.caller;
  const detail = boundedDetail(record.detail);
  return {
    id: record.id ?? uuidv7(),
    at: record.at ?? new Date(),
    actorId: caller.kind === 'user' ? caller.userId : null,
    actorName: sanitiseText(caller.kind === 'user' ? caller.email : `system:${caller.name}`, 320),
    onBehalfOf: chainOf(record.via),
    operation: sanitiseText(record.operation ?? '(unknown)', 100),
    permission: sanitiseOptional(record.permission, 64),
    projectKey: sanitiseOptional(record.projectKey, 32),
    target: sanitiseOptional(record.target, 200),
    outcome: (AUDIT_OUTCOMES as readonly string[]).includes(record.outcome) ? record.outcome : ('failed' as const),
    errorCode: sanitiseOptional(record.errorCode, 40),
    message: sanitiseOptional(record.message, 2000),
    detail: detail.value,
    /** The same, as JSON text (what the batched insert sends). */
    detailText: detail.text,
    requestId: sanitiseOptional(record.requestId, 100),
    sessionId: sanitiseOptional(record.sessionId, 100),
    clientAddress: sanitiseOptional(record.clientAddress, 100),
  };
}

const MAX_DETAIL_CHARS = 16_000;

function boundedDetail(detail: Record<string, unknown>): { value: Record<string, unknown>; text: string } {
  const value = sanitiseJson(detail) as Record<string, unknown>;
  const text = JSON.stringify(value);
  if (text.length <= MAX_DETAIL_CHARS) return { value, text };
  const cut = { truncated: true, preview: text.slice(0, 2000).toWellFormed() };
  return { value: cut, text: JSON.stringify(cut) };
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
    detail: row.detailText,
    request_id: row.requestId,
    session_id: row.sessionId,
    client_address: row.clientAddress,
  };
}

/**
 * Audit events of calls that changed nothing (read-only operations, refusals, invalid input) are
 * written by group commit: the call's answer waits until its event is in the database, and every
 * event that arrives while one insert is out goes into the next one, so a busy process writes few
 * large inserts and a quiet one adds one round trip per call. A client that saw an answer can rely
 * on its event being stored, whatever happens to the process after. Events of writing operations
 * never come here: they commit with the change.
 *
 * No event can hold the others back: a batch the database refuses is written row by row, and a
 * row it still refuses is written with its details replaced by a note saying so. When nothing can
 * be written (the database is away), `writable` turns false, so the runner refuses calls (fail
 * closed) until a retry gets through; the events wait in memory meanwhile, and close() keeps trying
 * for a while before it gives up on them, saying how many.
 */
export class AuditWriter {
  private queue: AuditRecord[] = [];
  /** Resolved when the events queued with them have been written (or could not be). */
  private waiting: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private scheduled = false;
  private inFlight = 0;
  private flushing: Promise<void> = Promise.resolve();
  private readonly orm: Orm;
  private readonly log: Logger;
  private readonly maxBatch: number;
  private readonly retryMs: number;
  private readonly deadlineMs: number;
  private failing = false;
  private em: Em | undefined;
  /** Counters for tests and diagnostics. */
  readonly stats = { written: 0, rewritten: 0, unwritable: 0, batchesRefused: 0, dropped: 0, inserts: 0 };

  /** deadlineMs: how long one insert may take before the database counts as away (a frozen host); none by default. */
  constructor(orm: Orm, log: Logger, options: { maxBatch?: number; retryMs?: number; deadlineMs?: number } = {}) {
    this.orm = orm;
    this.log = log;
    this.maxBatch = options.maxBatch ?? 500;
    this.retryMs = options.retryMs ?? 500;
    this.deadlineMs = options.deadlineMs ?? Number.POSITIVE_INFINITY;
  }

  /** False while the database refuses every write: calls must not run unaudited. */
  get writable(): boolean {
    return !this.failing;
  }

  /**
   * Queues an event; resolves once it is in the database, or once an attempt to write it failed
   * (the database is away: it waits in memory for the retry, and calls are refused meanwhile).
   */
  enqueue(record: AuditRecord): Promise<void> {
    this.queue.push({ ...record, id: uuidv7(), at: new Date() });
    if (this.queue.length > MAX_QUEUED) {
      const over = this.queue.length - MAX_QUEUED;
      this.queue.splice(0, over);
      this.stats.dropped += over;
      this.log.error({ events: over }, 'audit backlog full while the database is unreachable; oldest events dropped');
    }
    // While the database is away only the retry timer tries again: no attempt per call, and the
    // call (refused anyway) does not wait for it.
    if (this.failing) {
      this.timer ??= setTimeout(() => void this.flush(), this.retryMs).unref();
      return Promise.resolve();
    }
    const written = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.schedule();
    return written;
  }

  /** The next insert starts when the one out is done; events of the same turn of the loop share it. */
  private schedule(): void {
    if (this.scheduled || this.inFlight > 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.queue.length > 0 && this.inFlight === 0) void this.flush();
    });
  }

  /**
   * Writes everything enqueued so far, in inserts of at most maxBatch rows, stopping at the first
   * the database does not take; resolves once it is in the database (or could not be).
   */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    const waiting = this.waiting;
    this.queue = [];
    this.waiting = [];
    this.inFlight++;
    const done = this.flushing.then(async () => {
      try {
        for (let from = 0; from < batch.length; from += this.maxBatch) {
          const chunk = batch.slice(from, from + this.maxBatch);
          const left = await this.write(chunk.map(auditColumns));
          if (left.length === 0) continue;
          // The database is away: keep the rest, refuse calls, and try again soon.
          this.failing = true;
          this.queue = chunk.slice(chunk.length - left.length).concat(batch.slice(from + this.maxBatch), this.queue);
          this.log.error({ events: this.queue.length }, 'could not write audit events; calls are refused until the audit log is writable again');
          this.timer ??= setTimeout(() => void this.flush(), this.retryMs).unref();
          return;
        }
        if (this.failing && batch.length > 0) this.log.info('audit log writable again');
        if (batch.length > 0) this.failing = false;
      } finally {
        this.inFlight--;
        for (const resolve of waiting) resolve();
        // What arrived while this insert was out goes next.
        if (this.queue.length > 0 && !this.failing) this.schedule();
      }
    });
    // Nothing a flush throws may stop the ones after it (every call waits on them).
    this.flushing = done.catch((error: unknown) => this.log.error({ err: { type: (error as Error).name } }, 'audit flush failed'));
    return this.flushing;
  }

  /** Flushes, retrying for up to `withinMs` while the database is away; says what could not be written. */
  async close(withinMs = 5_000): Promise<void> {
    const until = Date.now() + withinMs;
    await this.flush();
    while (this.queue.length > 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(this.retryMs, Math.max(0, until - Date.now()))));
      await this.flush();
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length > 0) this.log.error({ events: this.queue.length }, 'audit events could not be written before shutdown');
  }

  /** Writes rows; returns the rows not written (a suffix), which is empty unless the database is away. */
  private async write(rows: AuditColumns[]): Promise<AuditColumns[]> {
    try {
      await this.insert(rows);
      this.stats.written += rows.length;
      return [];
    } catch (error) {
      this.stats.batchesRefused++;
      // Not the rows' fault: the database is away (or its pool is full), so trying them one by one
      // would only wait out the same deadline again for each.
      if (databaseUnavailable(error)) return rows;
      if (rows.length > 1) this.log.warn({ events: rows.length, err: { type: (error as Error).name } }, 'an audit batch was refused; writing it row by row');
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      try {
        await this.insert([row]);
        this.stats.written++;
        continue;
      } catch {
        // Refused as it is: written with its free text replaced, so the event itself stays.
      }
      try {
        await this.insert([{ ...row, message: null, target: null, client_address: null, detail: JSON.stringify({ unwritable: 'the details of this event could not be stored' }) }]);
        this.stats.written++;
        this.stats.rewritten++;
      } catch (error) {
        // Either the audit table cannot be reached at all (keep everything and fail closed), or
        // this one row cannot be stored in any form: said in the log, so it holds back nothing.
        if (!(await this.reachable())) return rows.slice(i);
        this.stats.unwritable++;
        this.log.error({ operation: row.operation, requestId: row.request_id, err: { type: (error as Error).name } }, 'an audit event could not be stored in any form');
      }
    }
    return [];
  }

  private async reachable(): Promise<boolean> {
    try {
      await this.orm.em.fork().execute('select 1 from audit_event limit 0');
      return true;
    } catch {
      return false;
    }
  }

  // One multi-row insert with bound parameters, through the ORM's query builder (Kysely) rather
  // than insertMany: these rows are never read back here, and insertMany's metadata work and
  // client-side query formatting showed in the HTTP bench's profile.
  // The fork is made once: it only lends its connection (no unit of work is used), and a fork per
  // insert would cost a call on the hot path an entity manager.
  // An insert that outlives its deadline counts as the database being away; it may still land
  // later, so a retry skips the rows that did (event ids are unique).
  private async insert(rows: AuditColumns[]): Promise<void> {
    this.stats.inserts++;
    this.em ??= this.orm.em.fork();
    const insert = this.em.getKysely<{ audit_event: AuditColumns }>().insertInto('audit_event').values(rows).onConflict((conflict) => conflict.doNothing()).execute();
    if (!Number.isFinite(this.deadlineMs)) return void (await insert);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error('audit insert: Query read timeout'), { code: 'ETIMEDOUT' })), this.deadlineMs);
    });
    try {
      await Promise.race([insert, deadline]);
    } finally {
      clearTimeout(timer);
      insert.catch(() => undefined);
    }
  }
}

/** Events kept in memory at most while the database is away (the oldest go first past that). */
const MAX_QUEUED = 100_000;
