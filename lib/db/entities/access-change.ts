import { defineEntity, p, Routine } from '@mikro-orm/core';

// The access-change feed: one row per user whose access a committed change may have altered
// (subject null: anyone), appended by the triggers below and read by every instance to drop just
// those users' cached values (lib/access/changes.ts). Append-only: no row is shared by two
// changes, so access-changing transactions never wait for one another here.
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

export class AccessChange extends AccessChangeSchema.class {}
AccessChangeSchema.setClass(AccessChange);
export { AccessChangeSchema };

/**
 * Appends the users a change to `subject` can affect: the user, and (for the cascade) the
 * delegates of its live delegations, the agents of its live agent sessions and the owners of
 * tokens minted through a delegation to it (P3: such a token lives only while the delegation
 * does), a few levels deep.
 * A null subject stands for everyone. The triggers below call it.
 */
export const AccessChanged = new Routine({
  name: 'access_changed',
  type: 'function',
  language: 'plpgsql',
  params: { subject: { type: 'uuid', nullable: true } },
  returns: { runtimeType: 'any', columnType: 'void' },
  body: `begin
  if subject is null then
    insert into access_change (subject_id) values (null);
    return;
  end if;
  insert into access_change (subject_id)
  with recursive affected(id, depth) as (
    select subject, 0
    union
    select next.id, affected.depth + 1
      from affected
      cross join lateral (
        select d.delegate_id as id from delegation d where d.delegator_id = affected.id and d.revoked_at is null
        union all
        select s.agent_id from agent_session s where s.spawner_id = affected.id and s.ended_at is null
        union all
        select t.user_id from api_token t join delegation d on d.id = t.source_delegation_id
         where d.delegate_id = affected.id and t.revoked_at is null) next
     where affected.depth < 3)
  select distinct id from affected;
end;`,
});

/** A role's holders, or everyone when they are too many to name one by one. */
export const RoleAccessChanged = new Routine({
  name: 'role_access_changed',
  type: 'function',
  language: 'plpgsql',
  params: { changed_role: { type: 'uuid' } },
  returns: { runtimeType: 'any', columnType: 'void' },
  body: `begin
  if (select count(*) from (select 1 from role_assignment where role_id = changed_role limit 1001) held) > 1000 then
    perform access_changed(null);
  else
    perform access_changed(h.user_id) from (select distinct user_id from role_assignment where role_id = changed_role) h;
  end if;
end;`,
});

export const ACCESS_ROUTINES = [AccessChanged, RoleAccessChanged];

type Event = 'insert' | 'update' | 'delete';

/**
 * A row trigger that reports the users a change affects. `subject` names the column (of `old` and
 * `new`) that holds the user id, or is an expression over the row written with `$row` for it.
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
