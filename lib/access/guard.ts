import { OpError } from '../errors.ts';
import { isPermission, type Permission } from './permissions.ts';
import type { EffectivePermissions, GrantSource } from './resolver.ts';

const DEAD_MESSAGES = {
  user_inactive: 'this account is deactivated',
  user_unknown: 'this account no longer exists',
  token_revoked: 'this API token has been revoked',
  token_expired: 'this API token has expired',
  token_unknown: 'this API token is not valid',
  token_source_ended: 'this API token was issued under a delegation or agent session that has ended',
  session_ended: 'this session has been ended; start a new one',
} as const;

/** Refuses a caller who is no longer live (disabled user, revoked or expired token). */
export function requireLive(effective: EffectivePermissions): void {
  if (!effective.live) {
    throw new OpError('unauthenticated', DEAD_MESSAGES[effective.deadReason ?? 'user_unknown']);
  }
}

/**
 * The one place a permission is checked. Returns the grant it was used through, preferring a role
 * of the caller's own over a delegation, so audit records a delegator chain only when one was used.
 */
export function requirePermission(
  effective: EffectivePermissions,
  permission: Permission,
  where: { operation: string; projectKey?: string | undefined },
): GrantSource {
  requireLive(effective);
  const sources = effective.grants.get(permission);
  if (!sources || sources.length === 0) {
    const scope = where.projectKey ? ` in project ${where.projectKey}` : '';
    const narrowed = effective.scopes && !effective.scopes.includes(permission) ? ' (not in this API token\'s scopes)' : '';
    throw new OpError('forbidden', `permission denied: ${where.operation} needs ${permission}${scope}${narrowed}`);
  }
  return sources.find((source) => source.kind === 'role') ?? sources[0]!;
}

/** Refuses unless the caller holds every one of `permissions` (e.g. all of a role it hands out). */
export function requireAllPermissions(effective: EffectivePermissions, permissions: readonly string[], what: string): void {
  requireLive(effective);
  const missing = permissions.filter((p) => isPermission(p) && !effective.grants.has(p));
  if (missing.length > 0) {
    throw new OpError('forbidden', `permission denied: ${what} needs ${missing.join(', ')}, which you do not hold`, { field: 'role' });
  }
}
