import { z } from 'zod';
import { User, USER_TYPES } from '../db/entities/index.ts';
import { conflict } from '../errors.ts';
import { hashPassword, passwordSchema } from '../identity/passwords.ts';
import { operation } from './operation.ts';
import { grantRole } from './roles.ts';
import { displayNameField, emailField, userNameField } from './schemas.ts';
import { userView } from './views.ts';

function nameFromEmail(email: string): string {
  const local = email.split('@')[0]!.replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '');
  return (local.length >= 2 ? local : `user-${local}`).slice(0, 64);
}

export const createUser = operation({
  name: 'create_user',
  title: 'Create a user',
  description:
    'Create a user (human, agent or service) with an email, optional login name, display name and password, and optionally give it global roles at once (that also needs roles:write). ' +
    'Fails with a conflict if the email or name is taken. Returns the new user.',
  input: z.strictObject({
    email: emailField,
    name: userNameField.optional(),
    display_name: displayNameField.optional(),
    type: z.enum(USER_TYPES).default('human'),
    password: passwordSchema.optional(),
    roles: z.array(z.string().min(1).max(64)).max(20).optional(),
  }),
  permission: 'users:write',
  annotations: {},
  async run(ctx, input) {
    if (input.roles?.length) await ctx.require('roles:write');
    const name = input.name ?? nameFromEmail(input.email);
    // A friendly answer for the common case; the unique constraints settle races (same message).
    const taken = await ctx.em.findOne(User, { $or: [{ email: input.email }, { name }] });
    if (taken) {
      throw taken.email === input.email
        ? conflict('a user with this email already exists', 'email')
        : conflict(`a user with this name already exists${input.name ? '' : '; pass another name'}`, 'name');
    }
    const user = ctx.em.create(User, {
      name,
      email: input.email,
      displayName: input.display_name ?? name,
      type: input.type,
      passwordHash: input.password ? await hashPassword(input.password) : null,
      active: true,
      createdById: ctx.caller.kind === 'user' ? ctx.caller.userId : null,
    });
    await ctx.em.flush();
    ctx.setTarget(`user:${user.id}`);
    const roles: string[] = [];
    for (const roleName of input.roles ?? []) {
      const { role } = await grantRole(ctx, user, roleName, null);
      roles.push(role.name);
    }
    return { ...userView(user), roles };
  },
});
