import type { AgentSession, ApiToken, AuditEvent, Delegation, Role, RoleAssignment, Session, User } from '../db/entities/index.ts';

// What a response may show of a record: never a password hash or a token hash.
export function userSummary(user: User) {
  return { id: user.id, email: user.email, name: user.name, display_name: user.displayName, active: user.active };
}

export function userView(user: User) {
  return {
    id: user.id,
    name: user.name,
    email: user.email,
    display_name: user.displayName,
    type: user.type,
    active: user.active,
    created_at: user.createdAt.toISOString(),
    deactivated_at: user.deactivatedAt?.toISOString() ?? null,
  };
}

export function tokenView(token: ApiToken) {
  return {
    id: token.id,
    user_id: token.user.id,
    name: token.name,
    prefix: token.prefix,
    scopes: token.scopes ?? null,
    expires_at: token.expiresAt?.toISOString() ?? null,
    last_used_at: token.lastUsedAt?.toISOString() ?? null,
    created_at: token.createdAt.toISOString(),
    revoked_at: token.revokedAt?.toISOString() ?? null,
  };
}

export function delegationView(delegation: Delegation, projectKey: string | null) {
  return {
    id: delegation.id,
    delegator_id: delegation.delegator.id,
    delegate_id: delegation.delegate.id,
    permission: delegation.permission,
    project_key: projectKey,
    expires_at: delegation.expiresAt?.toISOString() ?? null,
    reason: delegation.reason ?? null,
    created_at: delegation.createdAt.toISOString(),
    revoked_at: delegation.revokedAt?.toISOString() ?? null,
  };
}

export function sessionView(session: Session) {
  return {
    id: session.id,
    user_id: session.user.id,
    transport: session.transport,
    servers: session.servers ? session.servers.split(',') : [],
    client_name: session.clientName ?? null,
    client_address: session.clientAddress ?? null,
    authenticated_with: session.tokenId ? 'api_token' : 'password',
    token_id: session.tokenId,
    created_at: session.createdAt.toISOString(),
    last_seen_at: session.lastSeenAt.toISOString(),
    ended_at: session.endedAt?.toISOString() ?? null,
    end_reason: session.endReason ?? null,
  };
}

export function roleView(role: Role) {
  return {
    id: role.id,
    name: role.name,
    description: role.description,
    system: role.system,
    permissions: [...role.permissions].sort(),
    created_at: role.createdAt.toISOString(),
    updated_at: role.updatedAt.toISOString(),
  };
}

export function assignmentView(assignment: RoleAssignment) {
  return {
    id: assignment.id,
    user_id: assignment.user.id,
    role: assignment.role.name,
    project_key: assignment.project?.key ?? null,
    granted_by_id: assignment.grantedById,
    created_at: assignment.createdAt.toISOString(),
  };
}

export function agentSessionView(session: AgentSession) {
  return {
    id: session.id,
    agent_id: session.agent.id,
    spawner_id: session.spawner?.id ?? null,
    role: session.role,
    token_id: session.tokenId ?? null,
    created_at: session.createdAt.toISOString(),
    expires_at: session.expiresAt.toISOString(),
    ended_at: session.endedAt?.toISOString() ?? null,
    end_reason: session.endReason ?? null,
  };
}

export function auditView(event: AuditEvent) {
  return {
    id: event.id,
    at: event.at.toISOString(),
    actor_id: event.actorId,
    actor_name: event.actorName,
    on_behalf_of: event.onBehalfOf.map((link) => ({ user_id: link.userId, via: link.via, delegation_id: link.delegationId })),
    operation: event.operation,
    permission: event.permission,
    project_key: event.projectKey,
    target: event.target,
    outcome: event.outcome,
    error_code: event.errorCode,
    message: event.message,
    detail: event.detail,
    request_id: event.requestId,
    session_id: event.sessionId,
  };
}
