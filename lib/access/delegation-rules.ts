import type { Em } from '../db/orm.ts';
import { OpError, invalid } from '../errors.ts';
import { isPermission } from './permissions.ts';

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
export async function checkDelegation(em: Em, request: DelegationRequest, now: Date): Promise<void> {
  if (!isPermission(request.permission)) throw invalid('permission', `unknown permission "${request.permission}"`);
  if (request.delegatorId === request.delegateId) {
    throw invalid('delegate_id', 'a user cannot delegate to itself');
  }
  if (request.expiresAt && request.expiresAt <= now) throw invalid('expires_at', 'must be in the future');

  const delegate = await em.execute<{ active: boolean }>('select active from app_user where id = ?', [request.delegateId], 'get');
  if (!delegate) throw new OpError('not_found', 'delegate user not found', { field: 'delegate_id' });
  if (!delegate.active) throw invalid('delegate_id', 'the delegate user is deactivated');

  const held = await em.execute<{ through_role: boolean; through_delegation: boolean }>(
    `select
       exists (select 1 from role_assignment ra join role r on r.id = ra.role_id
                where ra.user_id = ? and ? = any(r.permissions)
                  and (ra.project_id is null or ra.project_id = ?::uuid)) as through_role,
       exists (select 1 from delegation d
                where d.delegate_id = ? and d.permission = ? and d.revoked_at is null
                  and (d.expires_at is null or d.expires_at > ?)) as through_delegation`,
    [request.delegatorId, request.permission, request.projectId, request.delegatorId, request.permission, now],
    'get',
  );
  if (!held?.through_role) {
    const scope = request.projectKey ? ` for project ${request.projectKey}` : '';
    const why = held?.through_delegation
      ? `the delegator holds ${request.permission} only through a delegation, and delegations cannot be delegated again`
      : `the delegator does not hold ${request.permission}${scope} through a role`;
    throw new OpError('forbidden', `cannot delegate: ${why}`, { field: 'permission' });
  }
}
