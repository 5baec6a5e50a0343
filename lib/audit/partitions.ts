import type { Em } from '../db/orm.ts';

// The audit log is partitioned by month of `at` (the migration made audit_event a partitioned table
// with a default partition). Partitions are made ahead of time, so new events land in their month;
// retention drops whole months that are past it and deletes the older part of the month it cuts.

/** Months made ahead of the current one, so a slow maintenance run never leaves events homeless. */
const MONTHS_AHEAD = 2;
const NAME = /^audit_event_y(\d{4})m(\d{2})$/;
// One maintainer at a time across instances; a second one waits for it and then finds the work done.
const LOCK = `select pg_advisory_xact_lock(hashtext('mandate audit partitions'))`;

export interface AuditMaintenance {
  created: string[];
  dropped: string[];
  /** Events deleted for retention from partitions that also hold newer events. */
  deleted: number;
}

const monthStart = (year: number, month: number) => new Date(Date.UTC(year, month, 1));
const nameOf = (start: Date) => `audit_event_y${start.getUTCFullYear()}m${String(start.getUTCMonth() + 1).padStart(2, '0')}`;
const literal = (date: Date) => `'${date.toISOString()}'`;

/**
 * Makes this month's and the next months' partitions (moving any of their events that landed in
 * the default partition), and applies the retention: `retentionDays` null keeps everything.
 */
export async function maintainAuditPartitions(em: Em, now: Date, retentionDays: number | null): Promise<AuditMaintenance> {
  return em.transactional(async (tx) => {
    await tx.execute(LOCK);
    const rows = await tx.execute<{ name: string }[]>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_event'::regclass`,
    );
    const existing = new Set(rows.map((row) => row.name));
    // This month and the next ones, and any month whose events sit in the default partition
    // (written before this ran: an upgrade, or a process that never maintained).
    const months = new Map<string, Date>();
    for (let ahead = 0; ahead <= MONTHS_AHEAD; ahead++) {
      const start = monthStart(now.getUTCFullYear(), now.getUTCMonth() + ahead);
      months.set(nameOf(start), start);
    }
    const stranded = await tx.execute<{ month: Date | string }[]>(`select distinct date_trunc('month', at, 'UTC') as month from audit_event_default`);
    for (const { month } of stranded) {
      const start = new Date(month);
      months.set(nameOf(start), start);
    }
    const created: string[] = [];
    for (const [name, start] of [...months].sort(([a], [b]) => a.localeCompare(b))) {
      if (existing.has(name)) continue;
      // The parent first, before any new partition: an insert holds the parent and then wants the
      // partition it routes to, so taking them the other way round deadlocks with it.
      if (created.length === 0) await tx.execute('lock table audit_event in access exclusive mode');
      await createMonth(tx, name, start, monthStart(start.getUTCFullYear(), start.getUTCMonth() + 1));
      created.push(name);
      existing.add(name);
    }
    if (retentionDays === null) return { created, dropped: [], deleted: 0 };

    const cutoff = new Date(now.getTime() - retentionDays * 86_400_000);
    const dropped: string[] = [];
    for (const name of [...existing].sort()) {
      const match = NAME.exec(name);
      if (!match) continue;
      const end = monthStart(Number(match[1]), Number(match[2])); // month index is 1-based: this is the next month's start
      if (end <= cutoff) {
        await tx.execute(`drop table "${name}"`);
        dropped.push(name);
      }
    }
    // The month the cutoff falls in, and anything in the default partition, lose their older part.
    const deleted = await tx.execute<{ count: number }>(`with gone as (delete from audit_event where at < ? returning 1) select count(*)::int as count from gone`, [cutoff], 'get');
    return { created, dropped, deleted: deleted?.count ?? 0 };
  });
}

async function createMonth(tx: Em, name: string, start: Date, end: Date): Promise<void> {
  const range = `for values from (${literal(start)}) to (${literal(end)})`;
  const stranded = await tx.execute<{ any: boolean }>(`select exists (select 1 from audit_event_default where at >= ? and at < ?) as any`, [start, end], 'get');
  if (!stranded?.any) {
    await tx.execute(`create table "${name}" partition of audit_event ${range}`);
    return;
  }
  // Events of that month are in the default partition (written before the month was made): a
  // partition cannot be created over them, so they move into it first.
  await tx.execute(`create table "${name}" (like audit_event including defaults including constraints)`);
  await tx.execute(`insert into "${name}" select * from audit_event_default where at >= ? and at < ?`, [start, end]);
  await tx.execute(`delete from audit_event_default where at >= ? and at < ?`, [start, end]);
  await tx.execute(`alter table audit_event attach partition "${name}" ${range}`);
}
