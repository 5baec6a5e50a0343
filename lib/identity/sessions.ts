import type { Em } from '../db/orm.ts';
import { Session, type SessionTransport } from '../db/entities/index.ts';
import { addAuditEvent } from '../ops/audit.ts';
import type { UserCaller } from './caller.ts';

/**
 * Opens the session row an admin sees and can end, with its `session_start` audit event (the
 * login record). Returns the caller bound to the session: ending the session ends its access.
 */
export async function startSession(
  em: Em,
  caller: UserCaller,
  details: { transport: SessionTransport; servers: string[]; clientName?: string; clientAddress?: string },
): Promise<UserCaller & { sessionId: string }> {
  const session = em.create(Session, {
    user: caller.userId,
    tokenId: caller.tokenId ?? null,
    transport: details.transport,
    servers: details.servers.join(','),
    clientName: details.clientName ?? null,
    clientAddress: details.clientAddress ?? null,
  });
  addAuditEvent(em, {
    caller,
    operation: 'session_start',
    outcome: 'allowed',
    target: `session:${session.id}`,
    detail: { transport: details.transport, servers: details.servers },
    sessionId: session.id,
    clientAddress: details.clientAddress,
  });
  await em.flush();
  return { ...caller, sessionId: session.id };
}

export async function endSession(em: Em, sessionId: string, reason: string): Promise<void> {
  await em.nativeUpdate(Session, { id: sessionId, endedAt: null }, { endedAt: new Date(), endReason: reason });
}

export async function nameSessionClient(em: Em, sessionId: string, clientName: string): Promise<void> {
  await em.nativeUpdate(Session, { id: sessionId }, { clientName });
}
