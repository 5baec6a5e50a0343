import type { Em } from '../db/orm.ts';
import { Project, Role, User, type Delegation } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function findUser(em: Em, id: string, field = 'user_id'): Promise<User> {
  const user = await em.findOne(User, { id });
  if (!user) throw new OpError('not_found', `user ${id} not found`, { field });
  return user;
}

/** A role by name, or by id (REST routes name roles by id). */
export async function findRole(em: Em, nameOrId: string, field = 'role'): Promise<Role> {
  const role = await em.findOne(Role, UUID.test(nameOrId) ? { id: nameOrId } : { name: nameOrId.toLowerCase() });
  if (!role) throw new OpError('not_found', `role "${nameOrId}" not found; list_roles shows them`, { field });
  return role;
}

export async function findProject(em: Em, key: string, field = 'project_key'): Promise<Project> {
  const project = await em.findOne(Project, { key });
  if (!project) throw new OpError('not_found', `project ${key} not found`, { field });
  return project;
}

/** Filter for delegations in force at `now`: not revoked, not expired (the resolver's SQL says the same). */
export function activeDelegations(now: Date) {
  return { revokedAt: null, $and: [{ $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] }] };
}

export function isActiveDelegation(delegation: Delegation, now: Date): boolean {
  return !delegation.revokedAt && (!delegation.expiresAt || delegation.expiresAt > now);
}
