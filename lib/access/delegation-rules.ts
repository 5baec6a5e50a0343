import type { Em } from '../db/orm.ts';
import { OpError, invalid } from '../errors.ts';
import { isPermission } from './permissions.ts';
import type { PermissionResolver } from './resolver.ts';

export interface DelegationRequest {
  delegatorId: string;
  delegateId: string;
  permission: string;
  projectId: string | null;
  projectKey?: string | undefined;
  expiresAt: Date | null;
}

/**
 * The rules a new delegation must meet. The resolver applies the same "delegator holds it through a
 * role" rule again at every use, so a delegation whose delegator later loses the permission stops.
 */
export async function checkDelegation(em: Em, resolver: PermissionResolver, request: DelegationRequest, now: Date): Promise<void> {
  if (!isPermission(request.permission)) throw invalid('permission', `unknown permission "${request.permission}"`);
  if (request.delegatorId === request.delegateId) {
    throw invalid('delegate_id', 'a user cannot delegate to itself');
  }
  if (request.expiresAt && request.expiresAt <= now) throw invalid('expires_at', 'must be in the future');

  const delegate = await em.execute<{ active: boolean }>('select active from app_user where id = ?', [request.delegateId], 'get');
  if (!delegate) throw new OpError('not_found', 'delegate user not found', { field: 'delegate_id' });
  if (!delegate.active) throw invalid('delegate_id', 'the delegate user is deactivated');

  // The resolver's own view of the delegator, so creation and use apply the very same rule.
  const held = await resolver.resolve(em, { userId: request.delegatorId }, request.projectId);
  const sources = held.grants.get(request.permission) ?? [];
  if (!sources.some((source) => source.kind === 'role')) {
    const scope = request.projectKey ? ` for project ${request.projectKey}` : '';
    const why = sources.length
      ? `the delegator holds ${request.permission} only through a delegation, and delegations cannot be delegated again`
      : `the delegator does not hold ${request.permission}${scope} through a role`;
    throw new OpError('forbidden', `cannot delegate: ${why}`, { field: 'permission' });
  }
}
