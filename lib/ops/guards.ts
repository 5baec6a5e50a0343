import type { Em } from '../db/orm.ts';
import { OpError, conflict } from '../errors.ts';
import type { Caller } from '../identity/caller.ts';

// Rules that keep an installation manageable, shared by every operation that could break them.

/** Refuses when the change would leave no active user holding the admin role globally. */
export async function keepAnAdmin(em: Em, losingUserId: string, what: string): Promise<void> {
  const row = await em.execute<{ others: number | string; target: number | string }>(
    `select count(*) filter (where u.id <> ?) as others, count(*) filter (where u.id = ?) as target
       from role_assignment ra join role r on r.id = ra.role_id and r.name = 'admin'
       join app_user u on u.id = ra.user_id and u.active
      where ra.project_id is null`,
    [losingUserId, losingUserId],
    'get',
  );
  if (Number(row?.target ?? 0) > 0 && Number(row?.others ?? 0) === 0) {
    throw conflict(`${what} would leave no active admin; make someone else an admin first`, 'user_id');
  }
}

/** Refuses to let callers lock themselves out by accident. */
export function notSelf(caller: Caller, userId: string, what: string): void {
  if (caller.kind === 'user' && caller.userId === userId) {
    throw new OpError('invalid_input', `user_id: you cannot ${what} yourself`, { field: 'user_id' });
  }
}
