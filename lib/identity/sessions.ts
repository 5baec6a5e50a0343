import { emOf, type Em, type EmSource } from '../db/orm.ts';
import { Session, type SessionTransport } from '../db/entities/index.ts';
import { addAuditEvent } from '../audit/writer.ts';
import { sanitiseText } from '../audit/sanitise.ts';
import type { UserCaller } from './caller.ts';
import { isLogLevel, type LogLevel } from '../report.ts';

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
    // Written by the client (its initialize): sanitised like every stored text from outside.
    clientName: details.clientName ? sanitiseText(details.clientName, 200) : null,
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
  await em.nativeUpdate(Session, { id: sessionId }, { clientName: sanitiseText(clientName, 200) });
}

/** Who a session belongs to, whether it has ended, and its client's log level; null when there is no such session. */
export async function sessionOwner(source: EmSource, sessionId: string): Promise<{ userId: string; ended: boolean; logLevel: LogLevel | null } | null> {
  const session = await emOf(source).findOne(Session, { id: sessionId });
  return session ? { userId: session.user.id, ended: session.endedAt !== null, logLevel: isLogLevel(session.logLevel) ? session.logLevel : null } : null;
}

/** Stores the level a session's client chose (logging/setLevel); ended sessions keep theirs, and the same level writes nothing. */
export async function setSessionLogLevel(em: Em, sessionId: string, level: LogLevel): Promise<void> {
  await em.nativeUpdate(Session, { id: sessionId, endedAt: null, $or: [{ logLevel: null }, { logLevel: { $ne: level } }] }, { logLevel: level });
}
