import type { ApiToken, Delegation, User } from '../db/entities/index.ts';

// What a response may show of a record: never a password hash or a token hash.
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
    reason: delegation.reason,
    created_at: delegation.createdAt.toISOString(),
    revoked_at: delegation.revokedAt?.toISOString() ?? null,
  };
}
