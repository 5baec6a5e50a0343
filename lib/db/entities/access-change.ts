import { defineEntity, p, Routine } from '@mikro-orm/core';

// The access-change feed: one row per user or role a committed change altered (subject null:
// anything), appended by the triggers below and read by every instance to drop just the cached
// values computed from it (lib/access/changes.ts). Append-only: no row is shared by two changes,
// so access-changing transactions never wait for one another here.
const AccessChangeSchema = defineEntity({
  name: 'AccessChange',
  tableName: 'access_change',
  properties: {
    seq: p.bigint('number').primary().autoincrement(),
    // The writing transaction: readers find rows committed since their last snapshot by it.
    xid: p.string().columnType('xid8').defaultRaw('pg_current_xact_id()').index('access_change_xid_idx'),
    subjectId: p.uuid().nullable(),
    at: p.datetime().defaultRaw('clock_timestamp()').index('access_change_at_idx'),
  },
});

// How far pruning has gone (one row, written by the prune only): a reader whose last snapshot is
// older than the newest pruned row may have missed rows, and drops everything.
const AccessChangePrunedSchema = defineEntity({
  name: 'AccessChangePruned',
  tableName: 'access_change_pruned',
  properties: {
    id: p.integer().primary().autoincrement(false),
    // The largest xid pruned (xid8 as a number).
    throughXid: p.bigint('number').default(0),
  },
});

export class AccessChangePruned extends AccessChangePrunedSchema.class {}
AccessChangePrunedSchema.setClass(AccessChangePruned);
export { AccessChangePrunedSchema };

export class AccessChange extends AccessChangeSchema.class {}
AccessChangeSchema.setClass(AccessChange);
export { AccessChangeSchema };

/** Where the embedded database's session hears of the feed's appends (see lib/db/orm.ts). */
export const ACCESS_CHANGE_CHANNEL = 'mandate_access_change';
/** Set only in the embedded database's sessions: the feed's appends are then also notified. */
export const NOTIFY_ACCESS_CHANGES_SETTING = 'mandate.notify_access_changes';

/**
 * Appends one change of `subject`: a user (its own row, assignments, delegations to it, tokens,
 * sessions) or a role (its permissions). A change reports only what it changed, never who depends
 * on it: each cached value records what it was computed from when it is read (a delegator, the
 * roles it relied on), which stays right whatever commits concurrently. Null: everyone.
 */
export const AccessChanged = new Routine({
  name: 'access_changed',
  type: 'function',
  language: 'plpgsql',
  params: { subject: { type: 'uuid', nullable: true } },
  returns: { runtimeType: 'any', columnType: 'void' },
  // The embedded database's one process hears of each change at its commit (NOTIFY is delivered
  // on commit only), so it reads the feed only after one; PostgreSQL's sessions never set this.
  body: `begin
  insert into access_change (subject_id) values (subject);
  if current_setting('mandate.notify_access_changes', true) = 'on' then
    perform pg_notify('mandate_access_change', '');
  end if;
end;`,
});

export const ACCESS_ROUTINES = [AccessChanged];

type Event = 'insert' | 'update' | 'delete';

/**
 * A row trigger that reports the user a changed row belongs to. `subject` names the column (of `old`
 * and `new`) that holds the user id, or is an expression over the row written with `$row` for it.
 * On an update, both the old and the new user count (a token moved to another user).
 * `when` conditions are written the way PostgreSQL prints them back, so the drift check compares equal.
 */
export function accessChangeTrigger(name: string, events: Event[], subject: string, when?: string) {
  const of = (row: 'old' | 'new') => (subject.includes('$row') ? subject.replaceAll('$row', row) : `${row}."${subject}"`);
  const calls: string[] = [];
  if (events.includes('update') || events.includes('delete')) calls.push(`if tg_op <> 'INSERT' then perform "access_changed"(${of('old')}); end if;`);
  if (events.includes('insert') || events.includes('update')) {
    calls.push(`if tg_op = 'INSERT' or (tg_op = 'UPDATE' and ${of('new')} is distinct from ${of('old')}) then perform "access_changed"(${of('new')}); end if;`);
  }
  return { name, timing: 'after' as const, events, forEach: 'row' as const, body: `${calls.join(' ')} return null;`, ...(when ? { when } : {}) };
}
