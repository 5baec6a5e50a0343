import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';

// An agent identity started by a user for a role: its own user, token and delegations, all of
// which end together when the session ends or expires.
const AgentSessionSchema = defineEntity({
  name: 'AgentSession',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    agent: () => p.manyToOne(User).deleteRule('cascade').index('agent_session_agent_idx'),
    // Set null rather than cascade: deleting a spawner ends its agents explicitly first.
    spawner: () => p.manyToOne(User).nullable().deleteRule('set null').index('agent_session_spawner_idx'),
    role: p.string().length(64),
    tokenId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime().index('agent_session_expires_idx'),
    endedAt: p.datetime().nullable(),
    endReason: p.string().length(100).nullable(),
  },
});

export class AgentSession extends AgentSessionSchema.class {}
AgentSessionSchema.setClass(AgentSession);
export { AgentSessionSchema };
