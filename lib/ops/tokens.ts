import { z } from 'zod';
import { ApiToken } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';
import { generateApiToken } from '../identity/tokens.ts';
import { operation } from './operation.ts';
import { findUser } from './lookups.ts';
import { permissionField, uuidField } from './schemas.ts';
import { tokenView } from './views.ts';

const DAY_MS = 86_400_000;

export const createTokenForUser = operation({
  name: 'create_token_for_user',
  title: "Create an API token for a user",
  description:
    'Create an API token for a user (for example an agent or service account). expires_in_days is 1-365 (default 90); scopes narrow the token to some of the ' +
    "user's permissions and must be among them. The raw token is in this result once and can never be shown again: hand it to its owner now.",
  input: z.strictObject({
    user_id: uuidField('the user'),
    name: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
    expires_in_days: z.number().int('must be a whole number of days').min(1, 'must be at least 1 day').max(365, 'must be at most 365 days').default(90),
    scopes: z.array(permissionField).min(1, 'must list at least one permission, or be left out').max(50).optional(),
  }),
  permission: 'tokens:write',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    const user = await findUser(ctx.em, input.user_id);
    if (!user.active) throw new OpError('invalid_input', 'user_id: the user is deactivated', { field: 'user_id' });
    if (input.scopes) {
      const held = await ctx.resolver.resolve(ctx.em, { userId: user.id });
      const beyond = input.scopes.filter((scope) => !held.grants.has(scope));
      if (beyond.length > 0) {
        throw new OpError('invalid_input', `scopes: the user does not hold ${beyond.join(', ')}`, { field: 'scopes' });
      }
    }
    const secret = generateApiToken();
    const token = ctx.em.create(ApiToken, {
      user,
      name: input.name,
      prefix: secret.prefix,
      hash: secret.hash,
      scopes: input.scopes ? [...new Set(input.scopes)] : null,
      expiresAt: new Date(ctx.now.getTime() + input.expires_in_days * DAY_MS),
      createdById: ctx.caller.kind === 'user' ? ctx.caller.userId : null,
    });
    await ctx.em.flush();
    return { ...tokenView(token), token: secret.raw };
  },
});
