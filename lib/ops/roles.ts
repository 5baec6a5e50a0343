import { z } from 'zod';
import { assignmentOutput, cursorPage, effectivePermissionsOutput, roleOutput, userOutput } from './outputs.ts';
import { callerUserId } from '../identity/caller.ts';
import { AgentSession, Project, Role, RoleAssignment, type User } from '../db/entities/index.ts';
import { requireAllPermissions } from '../access/guard.ts';
import { ALL_PERMISSIONS, PERMISSIONS, type Permission } from '../access/permissions.ts';
import { conflict, OpError } from '../errors.ts';
import { operation, type OperationContext } from './operation.ts';
import { describePermissions } from './effective.ts';
import { keepAnAdmin } from './guards.ts';
import { findProject, findRole, findUser } from './lookups.ts';
import { afterCursor, cursorField, decodeCursor, limitField, offsetField, page } from './pagination.ts';
import { permissionField, projectKeyField, uuidField } from './schemas.ts';
import { assignmentView, roleView, userView } from './views.ts';

const roleRef = z.string().trim().min(1, 'must name a role (its name or id)').max(64, 'must be at most 64 characters');
const roleName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z][a-z0-9_-]{1,63}$/, 'must be 2-64 characters: letters, digits, "_" or "-", starting with a letter');
const permissionList = z.array(permissionField).max(ALL_PERMISSIONS.length, `must list at most ${ALL_PERMISSIONS.length} permissions`);

/**
 * Refuses to hand out, through a role, permissions the caller does not hold itself for that scope
 * (`fresh`: asked again, see OperationContext.permissionsIn).
 */
async function requireHoldsAll(ctx: OperationContext, permissions: readonly string[], what: string, project: Project | null = null, fresh = false) {
  const held = await ctx.permissionsIn(project?.id ?? null, { fresh });
  if (held) requireAllPermissions(held, permissions, what);
}

/**
 * P3: adding permissions to a role the caller holds hands them to the caller; allowed only for
 * permissions it already holds through a role of its own (so nothing delegated becomes its own).
 */
async function notHandedToSelf(ctx: OperationContext, role: Role, added: readonly string[]) {
  if (ctx.caller.kind !== 'user') return;
  if (!(await ctx.em.count(RoleAssignment, { user: ctx.caller.userId, role }))) return;
  const held = await ctx.resolver.resolveAnywhere(ctx.em, ctx.caller);
  const notOwn = added.filter((p) => !(held.grants.get(p as Permission) ?? []).some((source) => source.kind === 'role'));
  if (notOwn.length) {
    throw new OpError('forbidden', `permission denied: you hold role "${role.name}", so adding ${notOwn.join(', ')} would hand it to yourself; ask another admin`, { field: 'permissions' });
  }
}

function notSystem(role: Role, what: string) {
  if (role.system) throw new OpError('invalid_input', `role: "${role.name}" is a system role and cannot be ${what}`, { field: 'role' });
}

/**
 * Assigns a role, refusing to hand out permissions the assigner does not hold itself for that
 * scope: roles:write alone must not let anyone mint a role richer than their own.
 */
export async function grantRole(ctx: OperationContext, user: User, roleRefValue: string, project: Project | null, options: { fresh?: boolean } = {}) {
  // P3: never to oneself, or roles:write would turn delegated permissions into a role of one's own.
  if (ctx.caller.kind === 'user' && ctx.caller.userId === user.id) {
    throw new OpError('forbidden', 'permission denied: you cannot assign a role to yourself; ask another admin', { field: 'user_id' });
  }
  // An agent holds only what its spawner delegated to its session (P3): a role would ride on the
  // session, and on the tracker connections its spawner lent it.
  if (await ctx.em.count(AgentSession, { agent: user.id })) {
    throw new OpError('forbidden', 'permission denied: an agent holds only what the user who started its session delegated to it; roles cannot be assigned to it', { field: 'user_id' });
  }
  const role = await findRole(ctx.em, roleRefValue);
  await requireHoldsAll(ctx, role.permissions, `assigning role "${role.name}"`, project, options.fresh);
  const existing = await ctx.em.findOne(RoleAssignment, { user, role, project });
  if (existing) return { assignment: existing, role, created: false };
  const assignment = ctx.em.create(RoleAssignment, {
    user,
    role,
    project,
    grantedById: callerUserId(ctx.caller),
  });
  await ctx.em.flush();
  return { assignment, role, created: true };
}

export const listPermissions = operation({
  name: 'list_permissions',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/permissions' },
  title: 'List permissions',
  description: 'List every permission in the catalogue with what it lets a caller do. Roles and delegations are made of these.',
  input: z.strictObject({}),
  output: z.strictObject({ items: z.array(z.strictObject({ permission: z.string(), description: z.string() })) }),
  permission: 'roles:read',
  effect: 'read',
  annotations: {},
  async run() {
    return { items: ALL_PERMISSIONS.map((permission) => ({ permission, description: PERMISSIONS[permission] })) };
  },
});

export const listRoles = operation({
  name: 'list_roles',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/roles' },
  title: 'List roles',
  description:
    'List roles (system first, then custom, by name) with their permissions and how many assignments each has; limit (default 100) and offset page through them. Returns {items, next_offset}.',
  input: z.strictObject({ limit: limitField.default(100), offset: offsetField }),
  output: z.strictObject({ items: z.array(roleOutput.extend({ assignments: z.number().int() })), next_offset: z.number().int().nullable() }),
  permission: 'roles:read',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const offset = input.offset ?? 0;
    const rows = await ctx.em.find(Role, {}, { orderBy: { system: 'desc', name: 'asc', id: 'asc' }, limit: input.limit + 1, offset });
    const roles = rows.slice(0, input.limit);
    const counts = await ctx.em.execute<{ role_id: string; n: string | number }[]>(
      'select role_id, count(*) as n from role_assignment group by role_id',
    );
    const countOf = new Map(counts.map((row) => [row.role_id, Number(row.n)]));
    return { items: roles.map((role) => ({ ...roleView(role), assignments: countOf.get(role.id) ?? 0 })), next_offset: rows.length > input.limit ? offset + input.limit : null };
  },
});

export const getRole = operation({
  name: 'get_role',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/roles/{role}' },
  title: 'Get a role',
  description: 'Get one role by name or id: description, permissions (with descriptions), whether it is a system role, and how many assignments it has.',
  input: z.strictObject({ role: roleRef }),
  output: roleOutput.extend({ permission_details: z.array(z.strictObject({ permission: z.string(), description: z.string().nullable() })), assignments: z.number().int() }),
  permission: 'roles:read',
  effect: 'read',
  annotations: {},
  target: (input) => `role:${input.role}`,
  async run(ctx, input) {
    const role = await findRole(ctx.em, input.role);
    const assignments = await ctx.em.count(RoleAssignment, { role });
    return {
      ...roleView(role),
      permission_details: roleView(role).permissions.map((p) => ({ permission: p, description: PERMISSIONS[p as keyof typeof PERMISSIONS] ?? null })),
      assignments,
    };
  },
});

export const createRole = operation({
  name: 'create_role',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/roles' },
  title: 'Create a custom role',
  description:
    'Create a custom role from permissions in the catalogue (list_permissions). You can only put permissions you hold yourself into a role. Returns the role.',
  input: z.strictObject({
    name: roleName,
    description: z.string().trim().max(1000, 'must be at most 1000 characters').default(''),
    permissions: permissionList.min(1, 'must list at least one permission'),
  }),
  output: roleOutput,
  permission: 'roles:write',
  effect: 'write',
  annotations: {},
  target: (input) => `role:${input.name}`,
  async run(ctx, input) {
    await requireHoldsAll(ctx, input.permissions, `creating role "${input.name}"`);
    if (await ctx.em.findOne(Role, { name: input.name })) throw conflict('a role with this name already exists', 'name');
    const role = ctx.em.create(Role, { name: input.name, description: input.description, system: false, permissions: [...new Set(input.permissions)] });
    await ctx.em.flush();
    return roleView(role);
  },
});

export const updateRole = operation({
  name: 'update_role',
  servers: ['admin'],
  route: { method: 'PATCH', path: '/api/admin/roles/{role}' },
  title: 'Update a custom role',
  description:
    "Change a custom role's description or its permissions (the full new list). Every member gets the change at once. System roles are read-only. " +
    'You can only add permissions you hold yourself. Returns the role.',
  input: z
    .strictObject({
      role: roleRef,
      description: z.string().trim().max(1000, 'must be at most 1000 characters').optional(),
      permissions: permissionList.optional(),
    })
    .refine((input) => input.description !== undefined || input.permissions !== undefined, {
      message: 'give description or permissions',
      path: ['permissions'],
    }),
  output: roleOutput,
  permission: 'roles:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: (input) => `role:${input.role}`,
  async run(ctx, input) {
    const role = await findRole(ctx.em, input.role);
    notSystem(role, 'changed');
    if (input.permissions) {
      const added = input.permissions.filter((p) => !role.permissions.includes(p));
      // Rewriting a role (removing as much as adding) needs every permission it holds and will hold.
      await requireHoldsAll(ctx, [...role.permissions, ...added], `changing the permissions of role "${role.name}"`);
      if (added.length) await notHandedToSelf(ctx, role, added);
      role.permissions = [...new Set(input.permissions)];
    }
    if (input.description !== undefined) role.description = input.description;
    await ctx.em.flush();
    return roleView(role);
  },
});

export const deleteRole = operation({
  name: 'delete_role',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/roles/{role}' },
  title: 'Delete a custom role',
  description:
    'Delete a custom role. Refused while it is assigned to anyone, unless cascade is true, which removes those assignments too (their members lose its permissions at once). System roles cannot be deleted.',
  input: z.strictObject({ role: roleRef, cascade: z.boolean().default(false) }),
  output: roleOutput.extend({ deleted: z.literal(true), assignments_removed: z.number().int() }),
  permission: 'roles:write',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: (input) => `role:${input.role}`,
  async run(ctx, input) {
    const role = await findRole(ctx.em, input.role);
    notSystem(role, 'deleted');
    const assignments = await ctx.em.count(RoleAssignment, { role });
    if (assignments > 0 && !input.cascade) {
      throw conflict(`role "${role.name}" has ${assignments} assignment(s); remove them first or pass cascade: true`, 'cascade');
    }
    await requireHoldsAll(ctx, role.permissions, `deleting role "${role.name}"`);
    const view = roleView(role);
    ctx.em.remove(role);
    await ctx.em.flush();
    return { ...view, deleted: true, assignments_removed: assignments };
  },
});

export const assignRole = operation({
  name: 'assign_role',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/users/{user_id}/roles' },
  title: 'Assign a role',
  description:
    'Give a user a role (role: its name or id, or role_id), globally or for one project (project_key or project_id). Idempotent: assigning a role the user already has returns the existing assignment. ' +
    'You can only assign a role whose permissions you hold yourself. Returns the assignment.',
  input: z
    .strictObject({
      user_id: uuidField('the user'),
      role: roleRef.optional(),
      role_id: uuidField('the role').optional(),
      project_key: projectKeyField.optional(),
      project_id: uuidField('the project').optional(),
    })
    .refine((input) => (input.role === undefined) !== (input.role_id === undefined), { message: 'give either role (name or id) or role_id', path: ['role'] })
    .refine((input) => input.project_key === undefined || input.project_id === undefined, { message: 'give project_key or project_id, not both', path: ['project_id'] }),
  output: assignmentOutput.extend({ created: z.boolean() }),
  permission: 'roles:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  project: (input) => input.project_key ?? input.project_id,
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    // Looked up once, by the runner, from `project` (key or id), in this transaction.
    const project = ctx.project ? await ctx.em.findOneOrFail(Project, { id: ctx.project.id }) : null;
    const { assignment, role, created } = await grantRole(ctx, user, (input.role ?? input.role_id)!, project);
    return { ...assignmentView(assignment), role: role.name, project_key: ctx.project?.key ?? null, created };
  },
});

export const removeRole = operation({
  name: 'remove_role',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/users/{user_id}/roles/{assignment_id}' },
  title: 'Remove a role assignment',
  description:
    'Take a role away from a user: name the assignment (assignment_id, from get_user) or the role (and project_key for a project assignment). ' +
    'The user loses its permissions at once, on every instance. You can only remove a role whose permissions you hold yourself. Returns the removed assignment.',
  input: z
    .strictObject({
      user_id: uuidField('the user'),
      assignment_id: uuidField('the role assignment').optional(),
      role_assignment_id: uuidField('the role assignment').optional().describe('the same as assignment_id'),
      role: roleRef.optional(),
      project_key: projectKeyField.optional(),
    })
    .refine((input) => [input.assignment_id ?? input.role_assignment_id, input.role].filter((v) => v !== undefined).length === 1, {
      message: 'give either assignment_id (or role_assignment_id) or role',
      path: ['role'],
    })
    .refine((input) => input.assignment_id === undefined || input.role_assignment_id === undefined || input.assignment_id === input.role_assignment_id, {
      message: 'assignment_id and role_assignment_id disagree; give one',
      path: ['role_assignment_id'],
    }),
  output: assignmentOutput.extend({ removed: z.literal(true) }),
  permission: 'roles:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    let assignment: RoleAssignment | null;
    const assignmentId = input.assignment_id ?? input.role_assignment_id;
    if (assignmentId) {
      assignment = await ctx.em.findOne(RoleAssignment, { id: assignmentId, user }, { populate: ['role', 'project'] });
    } else {
      const role = await findRole(ctx.em, input.role!);
      const project = input.project_key ? await findProject(ctx.em, input.project_key) : null;
      assignment = await ctx.em.findOne(RoleAssignment, { user, role, project }, { populate: ['role', 'project'] });
    }
    if (!assignment) throw new OpError('not_found', 'this user has no such role assignment', { field: input.assignment_id ? 'assignment_id' : input.role_assignment_id ? 'role_assignment_id' : 'role' });
    await requireHoldsAll(ctx, assignment.role.permissions, `removing role "${assignment.role.name}"`, assignment.project ?? null);
    if (assignment.role.name === 'admin' && !assignment.project) await keepAnAdmin(ctx.em, user.id, 'removing this admin role');
    const view = assignmentView(assignment);
    ctx.em.remove(assignment);
    await ctx.em.flush();
    return { ...view, removed: true };
  },
});

export const listRoleMembers = operation({
  name: 'list_role_members',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/roles/{role}/members' },
  title: "List a role's members",
  description: 'List the users a role is assigned to (globally or per project), a page at a time. Returns {items: [{assignment, user}], next_cursor}.',
  input: z.strictObject({ role: roleRef, limit: limitField, cursor: cursorField }),
  output: cursorPage(z.strictObject({ assignment: assignmentOutput, user: userOutput })),
  permission: 'roles:read',
  effect: 'read',
  annotations: {},
  target: (input) => `role:${input.role}`,
  async run(ctx, input) {
    const role = await findRole(ctx.em, input.role);
    const rows = await ctx.em.find(
      RoleAssignment,
      { $and: [{ role }, afterCursor(decodeCursor(input.cursor), 'createdAt')] },
      { populate: ['user', 'project', 'role'], orderBy: { createdAt: 'asc', id: 'asc' }, limit: input.limit + 1 },
    );
    const { items, next_cursor } = page(rows, input.limit, (a) => a.createdAt);
    return { items: items.map((a) => ({ assignment: assignmentView(a), user: userView(a.user) })), next_cursor };
  },
});

export const getUserPermissions = operation({
  name: 'get_user_permissions',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users/{user_id}/permissions' },
  title: "A user's effective permissions",
  description:
    "What a user may do, globally or in one project (project_key), and where each permission comes from: a role, or a delegation (who delegated it, until when). " +
    'Exactly what the guard would allow the user.',
  input: z.strictObject({ user_id: uuidField('the user'), project_key: projectKeyField.optional() }),
  output: effectivePermissionsOutput.extend({ user_id: z.string(), active: z.boolean() }),
  permission: 'users:read',
  effect: 'read',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    if (!user.active) return { user_id: user.id, active: false, project_key: input.project_key ?? null, token_scopes: null, permissions: [] };
    return { user_id: user.id, active: true, ...(await describePermissions(ctx.em, ctx.resolver, { userId: user.id }, input.project_key)) };
  },
});
