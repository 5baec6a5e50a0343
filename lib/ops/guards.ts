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

/**
 * An application connected with OAuth acts only through its grant, and everything it can do ends
 * with that grant. A credential it created (an API token, an agent session, a delegation, an OAuth
 * client) would outlive the grant, and reach further than its one resource: refused.
 */
export function notThroughOAuth(caller: Caller, what: string): void {
  if (caller.kind === 'user' && caller.resource !== undefined) {
    throw new OpError('forbidden', `permission denied: an application connected with OAuth cannot create ${what} (it would outlive the grant you gave it); use an API token or sign in`);
  }
}
