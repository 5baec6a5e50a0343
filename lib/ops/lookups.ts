import type { Em } from '../db/orm.ts';
import { Project, Role, User } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';

export async function findUser(em: Em, id: string, field = 'user_id'): Promise<User> {
  const user = await em.findOne(User, { id });
  if (!user) throw new OpError('not_found', `user ${id} not found`, { field });
  return user;
}

export async function findRole(em: Em, name: string, field = 'role'): Promise<Role> {
  const role = await em.findOne(Role, { name });
  if (!role) throw new OpError('not_found', `role "${name}" not found`, { field });
  return role;
}

export async function findProject(em: Em, key: string, field = 'project_key'): Promise<Project> {
  const project = await em.findOne(Project, { key });
  if (!project) throw new OpError('not_found', `project ${key} not found`, { field });
  return project;
}
