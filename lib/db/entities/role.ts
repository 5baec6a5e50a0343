import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { accessEpochTrigger } from './access-epoch.ts';

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
  triggers: [accessEpochTrigger('role_access_epoch', ['insert', 'update', 'delete'], 'statement')],
});

export class Role extends RoleSchema.class {}
RoleSchema.setClass(Role);
export { RoleSchema };
