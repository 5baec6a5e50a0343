import { randomBytes } from 'node:crypto';
import { ApiToken, Delegation, Project, Role, RoleAssignment, User } from '../../lib/db/entities/index.ts';
import type { Em } from '../../lib/db/orm.ts';
import type { UserCaller } from '../../lib/identity/caller.ts';
import { generateApiToken } from '../../lib/identity/tokens.ts';
import type { Runtime } from '../../lib/runtime.ts';

// Direct writes for arranging a test; the behaviour under test always goes through operations.

export function callerOf(user: User, tokenId?: string): UserCaller {
  return { kind: 'user', userId: user.id, name: user.name, email: user.email, type: user.type, ...(tokenId ? { tokenId } : {}) };
}

export async function makeUser(runtime: Runtime, options: { email?: string; roles?: (string | [string, string])[]; type?: User['type'] } = {}): Promise<User> {
  const em = runtime.db.orm.em.fork();
  const id = randomBytes(4).toString('hex');
  const email = options.email ?? `user-${id}@example.test`;
  const user = em.create(User, { name: email.split('@')[0]!, email, displayName: email, type: options.type ?? 'human', active: true });
  await em.flush();
  for (const spec of options.roles ?? []) {
    const [roleName, projectKey] = Array.isArray(spec) ? spec : [spec, undefined];
    await assign(runtime, user, roleName, projectKey);
  }
  return user;
}

export async function makeProject(runtime: Runtime, key: string): Promise<Project> {
  const em = runtime.db.orm.em.fork();
  const project = em.create(Project, { key, name: `Project ${key}` });
  await em.flush();
  return project;
}

export async function makeRole(runtime: Runtime, name: string, permissions: string[]): Promise<Role> {
  const em = runtime.db.orm.em.fork();
  const role = em.create(Role, { name, permissions, description: '', system: false });
  await em.flush();
  return role;
}

export async function assign(runtime: Runtime, user: User, roleName: string, projectKey?: string): Promise<RoleAssignment> {
  const em = runtime.db.orm.em.fork();
  const role = await em.findOneOrFail(Role, { name: roleName });
  const project = projectKey ? await em.findOneOrFail(Project, { key: projectKey }) : null;
  const assignment = em.create(RoleAssignment, { user: em.getReference(User, user.id), role, project });
  await em.flush();
  return assignment;
}

export async function unassign(runtime: Runtime, assignment: RoleAssignment): Promise<void> {
  const em = runtime.db.orm.em.fork();
  await em.nativeDelete(RoleAssignment, { id: assignment.id });
}

export async function delegate(
  runtime: Runtime,
  from: User,
  to: User,
  permission: string,
  options: { projectKey?: string; expiresAt?: Date } = {},
): Promise<Delegation> {
  const em = runtime.db.orm.em.fork();
  const project = options.projectKey ? await em.findOneOrFail(Project, { key: options.projectKey }) : null;
  const delegation = em.create(Delegation, {
    delegator: em.getReference(User, from.id),
    delegate: em.getReference(User, to.id),
    permission,
    project,
    expiresAt: options.expiresAt ?? null,
    reason: 'test',
  });
  await em.flush();
  return delegation;
}

export async function makeToken(runtime: Runtime, user: User, options: { scopes?: string[]; expiresAt?: Date } = {}) {
  const em = runtime.db.orm.em.fork();
  const secret = generateApiToken();
  const token = em.create(ApiToken, {
    user: em.getReference(User, user.id),
    name: 'test',
    prefix: secret.prefix,
    hash: secret.hash,
    scopes: options.scopes ?? null,
    expiresAt: options.expiresAt ?? null,
  });
  await em.flush();
  return { token, raw: secret.raw };
}

export async function update(runtime: Runtime, sql: string, params: unknown[]): Promise<void> {
  const em: Em = runtime.db.orm.em.fork();
  await em.execute(sql, params, 'run');
}
