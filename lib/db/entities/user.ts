import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { accessChangeTrigger } from './access-change.ts';

export const USER_TYPES = ['human', 'agent', 'service'] as const;
export type UserType = (typeof USER_TYPES)[number];

const UserSchema = defineEntity({
  name: 'User',
  tableName: 'app_user',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    // Login handle and e-mail are stored normalised (lower case), so a plain unique index is
    // case-insensitive on every database and no expression index can drift between them.
    name: p.string().length(64).unique('app_user_name_unique'),
    email: p.string().length(320).unique('app_user_email_unique'),
    displayName: p.string().length(200),
    type: p.enum(USER_TYPES).default('human'),
    passwordHash: p.text().nullable().hidden().lazy(),
    active: p.boolean().default(true),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
    deactivatedAt: p.datetime().nullable(),
    // A plain id, not a relation: deleting the creator must not cascade into its creations.
    createdById: p.uuid().nullable(),
  },
  // list_users pages by creation; its search (a substring of name, email or display name) is
  // served by trigram indexes (pg_trgm), one per column.
  indexes: [
    { name: 'app_user_created_idx', properties: ['createdAt', 'id'] },
    ...(['name', 'email', 'display_name'] as const).map((column) => ({
      name: `app_user_${column}_trgm_idx`,
      expression: `create index "app_user_${column}_trgm_idx" on "app_user" using gin ("${column}" gin_trgm_ops)`,
    })),
  ],
  triggers: [
    // Any change to a user counts (status, password, name, email): caches of identity and of
    // verified credentials drop it everywhere. Users change rarely; token last-use lives elsewhere.
    accessChangeTrigger('app_user_access_change', ['update', 'delete'], 'id'),
  ],
});

export class User extends UserSchema.class {}
UserSchema.setClass(User);
export { UserSchema };
