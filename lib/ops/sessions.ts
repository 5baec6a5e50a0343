import { z } from 'zod';
import { itemsOf, sessionOutput } from './outputs.ts';
import { Session } from '../db/entities/index.ts';
import { OpError } from '../errors.ts';
import { endSessions } from '../identity/account-lifecycle.ts';
import { operation } from './operation.ts';
import { findUser } from './lookups.ts';
import { uuidField } from './schemas.ts';
import { sessionView } from './views.ts';

export const listUserSessions = operation({
  name: 'list_user_sessions',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/users/{user_id}/sessions' },
  title: "List a user's sessions",
  description: "List a user's MCP sessions (stdio processes and HTTP sessions), newest first: transport, servers, client, how it authenticated, last seen. Ended ones only with include_ended.",
  input: z.strictObject({ user_id: uuidField('the user'), include_ended: z.boolean().default(false) }),
  output: itemsOf(sessionOutput),
  permission: 'sessions:read',
  effect: 'read',
  annotations: {},
  target: (input) => `user:${input.user_id}`,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    const where = input.include_ended ? { user: input.user_id } : { user: input.user_id, endedAt: null };
    const rows = await ctx.em.find(Session, where, { orderBy: { createdAt: 'desc' }, limit: 100 });
    return { items: rows.map(sessionView) };
  },
});

export const revokeUserSessions = operation({
  name: 'revoke_user_sessions',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/users/{user_id}/sessions' },
  title: "End a user's sessions",
  description:
    "End one session of a user (session_id) or all of them: their next call is refused on every instance. The user's API tokens keep working for new sessions; use deactivate_user to stop everything. Returns how many ended.",
  input: z.strictObject({ user_id: uuidField('the user'), session_id: uuidField('the session').optional() }),
  output: z.strictObject({ user_id: z.string(), sessions_ended: z.number().int() }),
  permission: 'sessions:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => (input.session_id ? `session:${input.session_id}` : `user:${input.user_id}`),
  actsOn: (input) => input.user_id,
  async run(ctx, input) {
    await findUser(ctx.em, input.user_id);
    if (input.session_id && !(await ctx.em.findOne(Session, { id: input.session_id, user: input.user_id }))) {
      throw new OpError('not_found', `session ${input.session_id} not found for this user`, { field: 'session_id' });
    }
    const ended = await endSessions(ctx.em, input.user_id, ctx.now, 'ended by an admin', input.session_id ? { sessionId: input.session_id } : undefined);
    return { user_id: input.user_id, sessions_ended: ended };
  },
});
