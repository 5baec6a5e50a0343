import { emOf, type EmSource } from '../db/orm.ts';
import { OpError } from '../errors.ts';
import type { Subject, PermissionResolver } from './resolver.ts';
import type { Permission } from './permissions.ts';

// P2 (DESIGN.md, Access): acting on another principal's credentials or standing needs, besides the
// operation's own permission, every permission that principal holds, in every scope it holds it.

export interface Uncovered {
  permission: Permission;
  projectId: string | null;
}

/** What `targetId` holds that `caller` does not hold in the same scope (global covers every project). */
export async function uncoveredStanding(resolver: PermissionResolver, source: EmSource, caller: Subject, targetId: string): Promise<Uncovered[]> {
  const em = emOf(source);
  const standing = await resolver.standing(em, targetId);
  const scopes = new Map<string | null, ReadonlySet<Permission>>();
  const missing: Uncovered[] = [];
  for (const held of standing) {
    let mine = scopes.get(held.projectId);
    if (!mine) {
      const effective = await resolver.resolve(source, caller, held.projectId);
      mine = new Set(effective.live ? effective.grants.keys() : []);
      scopes.set(held.projectId, mine);
    }
    if (!mine.has(held.permission)) missing.push(held);
  }
  return missing;
}

/** The refusal, naming what is missing and where (project keys looked up for the message only). */
export async function requireCoverage(resolver: PermissionResolver, source: EmSource, caller: Subject, targetId: string, operation: string): Promise<void> {
  if (caller.userId === targetId) return;
  const missing = await uncoveredStanding(resolver, source, caller, targetId);
  if (missing.length === 0) return;
  const projectIds = [...new Set(missing.flatMap((m) => (m.projectId ? [m.projectId] : [])))];
  const keys = new Map<string, string>();
  if (projectIds.length) {
    const rows = await emOf(source).execute<{ id: string; key: string }[]>(`select id, key from project where id in (${projectIds.map(() => '?').join(', ')})`, projectIds);
    for (const row of rows) keys.set(row.id, row.key);
  }
  const named = missing
    .map((m) => (m.projectId ? `${m.permission} in project ${keys.get(m.projectId) ?? m.projectId}` : m.permission))
    .sort();
  throw new OpError(
    'forbidden',
    `permission denied: ${operation} acts on a user who holds permissions you do not (${named.join(', ')}); you must hold every permission of the user you act on`,
    { field: 'user_id' },
  );
}
