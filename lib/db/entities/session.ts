import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';
import { accessChangeTrigger } from './access-change.ts';

export const SESSION_TRANSPORTS = ['stdio', 'http'] as const;
export type SessionTransport = (typeof SESSION_TRANSPORTS)[number];

// One row per MCP session (a stdio process, or an HTTP session id): what an admin lists and ends.
// Ending a session is an access change of its user, so every instance refuses its next call.
const SessionSchema = defineEntity({
  name: 'Session',
  tableName: 'mcp_session',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index('mcp_session_user_idx'),
    // The API token the session authenticated with; a plain id so token rows can be deleted freely.
    tokenId: p.uuid().nullable(),
    transport: p.enum(SESSION_TRANSPORTS),
    // Which servers the session serves, e.g. "core,admin".
    servers: p.string().length(100).default(''),
    clientName: p.string().length(200).nullable(),
    clientAddress: p.string().length(100).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    lastSeenAt: p.datetime().onCreate(() => new Date()),
    endedAt: p.datetime().nullable(),
    endReason: p.string().length(100).nullable(),
    // The client's logging/setLevel choice (null: never chosen); any instance serving the session honours it.
    logLevel: p.string().length(16).nullable(),
  },
  triggers: [
    accessChangeTrigger('mcp_session_access_change_update', ['update'], 'user_id', '((old.ended_at IS DISTINCT FROM new.ended_at) OR (old.user_id IS DISTINCT FROM new.user_id))'),
    // A new log level is a change of the session alone (its id as the subject): the instances caching
    // its row drop it, and nothing of its user's cached access is touched.
    accessChangeTrigger('mcp_session_log_level_change', ['update'], 'id', '((old.log_level)::text IS DISTINCT FROM (new.log_level)::text)'),
    accessChangeTrigger('mcp_session_access_change_delete', ['delete'], 'user_id'),
  ],
});

export class Session extends SessionSchema.class {}
SessionSchema.setClass(Session);
export { SessionSchema };
