import { LockMode } from '@mikro-orm/core';
import type { Em } from '../db/orm.ts';
import { AgentSession, ApiToken, Delegation, Session, User } from '../db/entities/index.ts';

// What ending an account's access means, in one place: deactivation, agent-session end and expiry
// all revoke the same things. Bulk updates fire the access-change triggers, so every instance
// refuses the next call at once.

export async function endSessions(em: Em, userId: string, now: Date, reason: string, only?: { sessionId?: string; passwordOnly?: boolean }) {
  const where: Record<string, unknown> = { user: userId, endedAt: null };
  if (only?.sessionId) where.id = only.sessionId;
  if (only?.passwordOnly) where.tokenId = null;
  // The user's browser sign-ins at the OAuth pages are password sessions too: they end with the
  // rest (the grants they gave stay, and are ended on their own).
  if (!only?.sessionId) await em.execute(`delete from oauth_record where model = 'Session' and payload->>'accountId' = ?`, [userId], 'run');
  return em.nativeUpdate(Session, where, { endedAt: now, endReason: reason });
}

export async function revokeTokens(em: Em, userId: string, now: Date) {
  return em.nativeUpdate(ApiToken, { user: userId, revokedAt: null }, { revokedAt: now });
}

/**
 * Every path that ends an agent session or deactivates an account takes the account's agent
 * session rows first, then the rest: one lock order, so two of them (an end, a sweep, a
 * deactivation) wait for each other rather than deadlock.
 */
async function lockAgentSessionsOf(em: Em, agentId: string): Promise<void> {
  await em.execute('select id from agent_session where agent_id = ? and ended_at is null order by id for update', [agentId], 'all');
}

/** Deactivates a user and ends its sessions and tokens; an agent's own agent session ends with it. */
export async function deactivateAccount(em: Em, user: User, now: Date, reason: string) {
  await lockAgentSessionsOf(em, user.id);
  const summary = { tokens_revoked: 0, sessions_ended: 0 };
  if (user.active) {
    user.active = false;
    user.deactivatedAt = now;
    await em.flush();
  }
  summary.tokens_revoked = await revokeTokens(em, user.id, now);
  summary.sessions_ended = await endSessions(em, user.id, now, reason);
  await em.nativeUpdate(AgentSession, { agent: user.id, endedAt: null }, { endedAt: now, endReason: reason });
  return summary;
}

/** Ends an agent session: its token, the delegations it was given, its sessions, and the agent user. */
export async function endAgentSession(em: Em, session: AgentSession, now: Date, reason: string) {
  if (session.endedAt) return { ended: false };
  await lockAgentSessionsOf(em, session.agent.id);
  session.endedAt = now;
  session.endReason = reason;
  await em.nativeUpdate(Delegation, { delegate: session.agent.id, revokedAt: null }, { revokedAt: now });
  // What the agent minted for anyone ends with it (P3); its tokens stop anyway with their source
  // delegations, and this says so in the rows too.
  await em.nativeUpdate(ApiToken, { createdById: session.agent.id, revokedAt: null }, { revokedAt: now });
  await em.nativeUpdate(Delegation, { createdById: session.agent.id, revokedAt: null }, { revokedAt: now });
  const agent = await em.findOneOrFail(User, { id: session.agent.id });
  await deactivateAccount(em, agent, now, reason);
  await em.flush();
  return { ended: true };
}

/**
 * Ends every agent session past its expiry; long-running processes call it periodically, and so
 * does each start of an agent session. A session is ended by whichever caller locks it first: the
 * others skip it (SKIP LOCKED) instead of waiting on it, or deadlocking on two taken in turn.
 */
export async function endExpiredAgentSessions(em: Em, now: Date): Promise<number> {
  return em.transactional(async (tx) => {
    const expired = await tx.find(AgentSession, { endedAt: null, expiresAt: { $lte: now } }, { orderBy: { id: 'asc' }, lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE });
    for (const session of expired) await endAgentSession(tx, session, now, 'expired');
    return expired.length;
  });
}
