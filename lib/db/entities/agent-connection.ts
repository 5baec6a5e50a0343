import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { AgentSession } from './agent-session.ts';
import { PmConnection } from './pm-connection.ts';

// A spawner's tracker connection an agent session may use (chosen when the session starts). The
// agent never holds the credential: its PM tools open the connection in Mandate, and only while
// the session is live. Removing the connection or ending the session ends the loan.
const AgentConnectionSchema = defineEntity({
  name: 'AgentConnection',
  tableName: 'agent_session_connection',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    agentSession: () => p.manyToOne(AgentSession).deleteRule('cascade'),
    connection: () => p.manyToOne(PmConnection).deleteRule('cascade').index('agent_session_connection_connection_idx'),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ name: 'agent_session_connection_unique', properties: ['agentSession', 'connection'] }],
});

export class AgentConnection extends AgentConnectionSchema.class {}
AgentConnectionSchema.setClass(AgentConnection);
export { AgentConnectionSchema };
