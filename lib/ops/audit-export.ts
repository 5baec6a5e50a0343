import type { Orm } from '../db/orm.ts';
import { AuditEvent } from '../db/entities/index.ts';
import { auditView } from './views.ts';

const BATCH = 1000;

/**
 * The audit events from `since` (inclusive) to `until` (exclusive), oldest first, as query_audit
 * shows them, a batch at a time: keyset pages over the (at, id) index, each read in a fresh entity
 * manager, so a year of audit streams in constant memory.
 */
export async function* auditEvents(orm: Orm, since: Date, until: Date | null): AsyncGenerator<ReturnType<typeof auditView>> {
  let after: { at: Date; id: string } | null = null;
  for (;;) {
    const where: Record<string, unknown>[] = [{ at: { $gte: since } }];
    if (until) where.push({ at: { $lt: until } });
    if (after) where.push({ $or: [{ at: { $gt: after.at } }, { at: after.at, id: { $gt: after.id } }] });
    const rows: AuditEvent[] = await orm.em.fork().find(AuditEvent, { $and: where }, { orderBy: { at: 'asc', id: 'asc' }, limit: BATCH });
    for (const row of rows) yield auditView(row);
    if (rows.length < BATCH) return;
    const last = rows[rows.length - 1]!;
    after = { at: last.at, id: last.id };
  }
}
