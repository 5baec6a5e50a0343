import type { Em } from '../db/orm.ts';
import { McpCatalogEntry, Project, Role, User, type Delegation } from '../db/entities/index.ts';
import { isUuid } from '../ids.ts';
import { OpError } from '../errors.ts';


export async function findUser(em: Em, id: string, field = 'user_id'): Promise<User> {
  const user = await em.findOne(User, { id });
  if (!user) throw new OpError('not_found', `user ${id} not found`, { field });
  return user;
}

/** A role by name, or by id (REST routes name roles by id). */
export async function findRole(em: Em, nameOrId: string, field = 'role'): Promise<Role> {
  const role = await em.findOne(Role, isUuid(nameOrId) ? { id: nameOrId } : { name: nameOrId.toLowerCase() });
  if (!role) throw new OpError('not_found', `role "${nameOrId}" not found; list_roles shows them`, { field });
  return role;
}

/** A catalog entry by name, or by id (REST paths name entries by id). */
export async function findCatalogEntry(em: Em, nameOrId: string, field = 'id'): Promise<McpCatalogEntry> {
  const entry = await em.findOne(McpCatalogEntry, isUuid(nameOrId) ? { id: nameOrId } : { name: nameOrId.toLowerCase() });
  if (!entry) throw new OpError('not_found', `MCP catalog entry "${nameOrId}" not found; list_mcp_catalog shows them`, { field });
  return entry;
}

/** A project by key, or by id (the admin agents' contract passes ids). */
export async function findProject(em: Em, keyOrId: string, field = 'project_key'): Promise<Project> {
  const project = await em.findOne(Project, isUuid(keyOrId) ? { id: keyOrId } : { key: keyOrId });
  if (!project) throw new OpError('not_found', `project ${keyOrId} not found; list_mandate_projects shows them`, { field: isUuid(keyOrId) && field === 'project_key' ? 'project_id' : field });
  return project;
}

/** Filter for delegations in force at `now`: not revoked, not expired (the resolver's SQL says the same). */
export function activeDelegations(now: Date) {
  return { revokedAt: null, $and: [{ $or: [{ expiresAt: null }, { expiresAt: { $gt: now } }] }] };
}

export function isActiveDelegation(delegation: Delegation, now: Date): boolean {
  return !delegation.revokedAt && (!delegation.expiresAt || delegation.expiresAt > now);
}
