import { z } from 'zod';
import { RoleAssignment, type Project, type User } from '../db/entities/index.ts';
import { requireAllPermissions } from '../access/guard.ts';
import { operation, type OperationContext } from './operation.ts';
import { findProject, findRole, findUser } from './lookups.ts';
import { projectKeyField, uuidField } from './schemas.ts';

/**
 * Assigns a role, refusing to hand out permissions the assigner does not hold itself for that
 * scope: roles:write alone must not let anyone mint a role richer than their own.
 */
export async function grantRole(ctx: OperationContext, user: User, roleName: string, project: Project | null) {
  const role = await findRole(ctx.em, roleName);
  if (ctx.caller.kind === 'user') {
    const held = await ctx.resolver.resolve(ctx.em, ctx.caller, project?.id ?? null);
    requireAllPermissions(held, role.permissions, `assigning role "${role.name}"`);
  }
  const existing = await ctx.em.findOne(RoleAssignment, { user, role, project });
  if (existing) return { assignment: existing, role, created: false };
  const assignment = ctx.em.create(RoleAssignment, {
    user,
    role,
    project,
    grantedById: ctx.caller.kind === 'user' ? ctx.caller.userId : null,
  });
  await ctx.em.flush();
  return { assignment, role, created: true };
}

export const assignRole = operation({
  name: 'assign_role',
  title: 'Assign a role',
  description:
    'Give a user a role, globally or for one project (project_key). Idempotent: assigning a role the user already has returns the existing assignment. ' +
    'You can only assign a role whose permissions you hold yourself. Returns the assignment.',
  input: z.strictObject({
    user_id: uuidField('the user'),
    role: z.string().min(1, 'must name a role').max(64),
    project_key: projectKeyField.optional(),
  }),
  permission: 'roles:write',
  annotations: { idempotentHint: true },
  project: (input) => input.project_key,
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    const project = input.project_key ? await findProject(ctx.em, input.project_key) : null;
    const { assignment, role, created } = await grantRole(ctx, user, input.role, project);
    return {
      id: assignment.id,
      user_id: user.id,
      role: role.name,
      project_key: project?.key ?? null,
      created,
    };
  },
});
