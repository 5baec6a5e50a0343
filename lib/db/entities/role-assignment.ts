import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';
import { Role } from './role.ts';
import { Project } from './project.ts';
import { accessChangeTrigger } from './access-change.ts';

const RoleAssignmentSchema = defineEntity({
  name: 'RoleAssignment',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index('role_assignment_user_idx'),
    role: () => p.manyToOne(Role).deleteRule('cascade'),
    project: () => p.manyToOne(Project).nullable().deleteRule('cascade'),
    grantedById: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  // One assignment per (user, role, project); a global assignment has no project, and NULLs are
  // distinct in a plain unique index, so the global case gets its own partial index.
  uniques: [
    { name: 'role_assignment_project_unique', properties: ['user', 'role', 'project'] },
    { name: 'role_assignment_global_unique', properties: ['user', 'role'], where: 'project_id is null' },
  ],
  // A role's members in the order list_role_members pages them (and a role edit's holders).
  indexes: [{ name: 'role_assignment_role_idx', properties: ['role', 'createdAt', 'id'] }],
  triggers: [accessChangeTrigger('role_assignment_access_change', ['insert', 'update', 'delete'], 'user_id')],
});

export class RoleAssignment extends RoleAssignmentSchema.class {}
RoleAssignmentSchema.setClass(RoleAssignment);
export { RoleAssignmentSchema };
