import { randomBytes } from 'node:crypto';
import { agentSessionOutput, itemsOf, userOutput } from './outputs.ts';
import { callerUserId } from '../identity/caller.ts';
import { z } from 'zod';
import { AgentConnection, AgentSession, Delegation, PmConnection, Project, User } from '../db/entities/index.ts';
import { isUuid } from '../ids.ts';
import { isPermission, type Permission } from '../access/permissions.ts';
import { OpError } from '../errors.ts';
import { endAgentSession, endExpiredAgentSessions } from '../identity/account-lifecycle.ts';
import { AGENT_LIFETIME_DEFAULT_MINUTES, AGENT_LIFETIME_MAX_MINUTES, planAgentGrants, type RoleHeld } from '../identity/agents.ts';
import { operation, type OperationContext } from './operation.ts';
import { findRole } from './lookups.ts';
import { me } from './self.ts';
import { uuidField } from './schemas.ts';
import { callerTokenExpiry, issueToken } from './tokens.ts';
import { agentSessionView, userView } from './views.ts';

const ROLE_HELD_SQL = `
select perm as permission, ra.project_id
  from role_assignment ra join role r on r.id = ra.role_id
  cross join lateral unnest(r.permissions) as perm
 where ra.user_id = ?`;

export const startAgentSession = operation({
  name: 'start_agent_session',
  servers: ['core'],
  route: { method: 'POST', path: '/api/agent-sessions' },
  title: 'Start an agent session',
  description:
    'Start an AI agent under your mandate for a role: creates an agent user and an API token for it. The agent gets the permissions of the role that you hold yourself ' +
    '(delegate_admin: true adds the admin permissions you hold), as delegations from you, for lifetime_minutes (default 120, at most 1440). ' +
    'Permissions you do not hold, or hold only through a delegation, are listed in skipped. ' +
    "pm_connections: which of your tracker connections the agent's PM tools may use (default: your default one; [] for none): the agent acts through them within its pm permissions while the session lives, never seeing the credential. " +
    'Returns the agent session, the role, and the token to launch it with (AGENT_ROLE=<role> MANDATE_TOKEN=<token> entrypoint.sh serve), shown once. End it with end_agent_session.',
  input: z.strictObject({
    role: z.string().trim().min(1, 'must name a role').max(64, 'must be at most 64 characters'),
    lifetime_minutes: z
      .number()
      .int('must be a whole number of minutes')
      .min(5, 'must be at least 5 minutes')
      .max(AGENT_LIFETIME_MAX_MINUTES, `must be at most ${AGENT_LIFETIME_MAX_MINUTES} minutes (24 h)`)
      .default(AGENT_LIFETIME_DEFAULT_MINUTES),
    delegate_admin: z.boolean().default(false),
    label: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    pm_connections: z
      .array(z.string().trim().min(1, 'must name one of your PM connections (id or name)').max(100, 'must be at most 100 characters'))
      .max(20, 'must list at most 20 connections')
      .optional()
      .describe("which of your tracker connections the agent's PM tools may use (ids or names); default: your default connection; [] for none"),
  }),
  output: z.strictObject({ agent_session: agentSessionOutput, agent: userOutput, role: z.string(), token: z.string().describe("the agent's token: shown once"), granted: z.array(z.strictObject({ permission: z.string(), project_key: z.string().nullable() })), skipped: z.array(z.strictObject({ permission: z.string(), reason: z.string() })), pm_connections: z.array(z.strictObject({ id: z.string(), name: z.string(), provider: z.string() })).describe("your connections the agent's PM tools may use") }),
  permission: null,
  effect: 'write',
  annotations: {},
  async run(ctx, input) {
    const caller = me(ctx);
    await endExpiredAgentSessions(ctx.em, ctx.now);
    const role = await findRole(ctx.em, input.role);
    const [roleHeldRows, effective] = await Promise.all([
      ctx.em.execute<{ permission: string; project_id: string | null }[]>(ROLE_HELD_SQL, [caller.userId]),
      ctx.resolver.resolve(ctx.em, caller),
    ]);
    const roleHeld: RoleHeld[] = roleHeldRows
      .filter((row) => isPermission(row.permission))
      .map((row) => ({ permission: row.permission as Permission, projectId: row.project_id }));
    const { grants, skipped } = planAgentGrants({
      rolePermissions: role.permissions,
      delegateAdmin: input.delegate_admin,
      roleHeld,
      effective: new Set(effective.grants.keys()),
      scopes: effective.scopes,
    });

    const suffix = randomBytes(4).toString('hex');
    const spawner = await ctx.em.findOneOrFail(User, { id: caller.userId });
    // P3: an agent started with an expiring token (an agent's own, above all) ends with it.
    const ceiling = await callerTokenExpiry(ctx);
    const asked = new Date(ctx.now.getTime() + input.lifetime_minutes * 60_000);
    const expiresAt = ceiling && ceiling < asked ? ceiling : asked;
    const agent = ctx.em.create(User, {
      name: `agent-${role.name}-${suffix}`.slice(0, 64),
      email: `agent-${suffix}@agents.mandate.invalid`,
      displayName: input.label ?? `${role.name} agent of ${spawner.name}`,
      type: 'agent',
      passwordHash: null,
      active: true,
      createdById: spawner.id,
    });
    await ctx.em.flush();
    ctx.setTarget(`user:${agent.id}`);
    for (const grant of grants) {
      ctx.em.create(Delegation, {
        delegator: spawner,
        delegate: agent,
        permission: grant.permission,
        project: grant.projectId ? ctx.em.getReference(Project, grant.projectId) : null,
        expiresAt,
        reason: `agent session (role ${role.name})`,
      });
    }
    const token = await issueToken(ctx, agent, { name: `agent session (${role.name})`, expiresAt });
    const session = ctx.em.create(AgentSession, { agent, spawner, role: role.name, tokenId: token.id, expiresAt });
    const lent = await connectionsToLend(ctx, spawner.id, input.pm_connections);
    for (const connection of lent) ctx.em.create(AgentConnection, { agentSession: session, connection });
    await ctx.em.flush();
    const projectKeys = new Map(
      (await ctx.em.find(Project, { id: { $in: grants.flatMap((g) => (g.projectId ? [g.projectId] : [])) } })).map((p) => [p.id, p.key]),
    );
    return {
      agent_session: agentSessionView(session),
      agent: userView(agent),
      role: role.name,
      token: token.token,
      granted: grants.map((g) => ({ permission: g.permission, project_key: g.projectId ? (projectKeys.get(g.projectId) ?? null) : null })),
      skipped,
      pm_connections: lent.map((c) => ({ id: c.id, name: c.name, provider: c.provider })),
    };
  },
});

/** The spawner's own connections named (each once), or its default one when none are named. */
async function connectionsToLend(ctx: OperationContext, spawnerId: string, refs: string[] | undefined): Promise<PmConnection[]> {
  if (refs === undefined) return ctx.em.find(PmConnection, { user: spawnerId, isDefault: true });
  const chosen = new Map<string, PmConnection>();
  for (const [index, ref] of refs.entries()) {
    const connection = await ctx.em.findOne(PmConnection, isUuid(ref) ? { id: ref, user: spawnerId } : { name: ref, user: spawnerId });
    if (!connection) throw new OpError('not_found', `you have no PM connection "${ref}" (list_pm_connections shows yours)`, { field: `pm_connections.${index}` });
    chosen.set(connection.id, connection);
  }
  return [...chosen.values()];
}

export const endAgentSessionOp = operation({
  name: 'end_agent_session',
  servers: ['core'],
  route: { method: 'DELETE', path: '/api/agent-sessions/{agent_session_id}' },
  title: 'End an agent session',
  description:
    'End an agent session at once: its token and delegations are revoked, its sessions end and the agent user is deactivated, on every instance. ' +
    'Its spawner and the agent itself may end it; anyone else needs users:write. Idempotent.',
  input: z.strictObject({ agent_session_id: uuidField('the agent session') }),
  output: agentSessionOutput.extend({ ended_now: z.boolean() }),
  permission: null,
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: (input) => `agent_session:${input.agent_session_id}`,
  async run(ctx, input) {
    const session = await ctx.em.findOne(AgentSession, { id: input.agent_session_id });
    const self = callerUserId(ctx.caller);
    if (!session || (session.spawner?.id !== self && session.agent.id !== self)) await ctx.require('users:write');
    if (!session) throw new OpError('not_found', `agent session ${input.agent_session_id} not found`, { field: 'agent_session_id' });
    // Someone else's agent: ending it acts on its standing (P2).
    if (session.spawner?.id !== self && session.agent.id !== self) await ctx.requireCovers(session.agent.id);
    const { ended } = await endAgentSession(ctx.em, session, ctx.now, self === session.agent.id ? 'ended by the agent' : 'ended');
    return { ...agentSessionView(session), ended_now: ended };
  },
});

export const listMyAgentSessions = operation({
  name: 'list_my_agent_sessions',
  servers: ['core'],
  route: { method: 'GET', path: '/api/agent-sessions' },
  title: 'My agent sessions',
  description: 'The agent sessions you started, newest first: role, agent user, expiry, whether ended. Running ones only unless include_ended is true.',
  input: z.strictObject({ include_ended: z.boolean().default(false) }),
  output: itemsOf(agentSessionOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const { userId } = me(ctx);
    const where = input.include_ended ? { spawner: userId } : { spawner: userId, endedAt: null, expiresAt: { $gt: ctx.now } };
    const rows = await ctx.em.find(AgentSession, where, { orderBy: { createdAt: 'desc' }, limit: 100 });
    return { items: rows.map(agentSessionView) };
  },
});
