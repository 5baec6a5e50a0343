import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';

const RoleSchema = defineEntity({
  name: 'Role',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(64).unique('role_name_unique'),
    description: p.text().default(''),
    system: p.boolean().default(false),
    permissions: p.array().default([]),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  // A new role has no holders; an edited or deleted one is a change of the role, which every value
  // computed from it depends on (deleted assignments report their users too).
  triggers: [{ name: 'role_access_change', timing: 'after', events: ['update', 'delete'], forEach: 'row', body: 'perform "access_changed"(old."id"); return null;' }],
});

export class Role extends RoleSchema.class {}
RoleSchema.setClass(Role);
export { RoleSchema };
