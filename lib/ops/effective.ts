import type { Em } from '../db/orm.ts';
import { Project, User } from '../db/entities/index.ts';
import { PERMISSIONS } from '../access/permissions.ts';
import type { PermissionResolver, Subject } from '../access/resolver.ts';
import { requireLive } from '../access/guard.ts';
import { findProject } from './lookups.ts';

/**
 * Effective permissions with where each comes from: a role (global or for a project) or a
 * delegation (who delegated it, until when). The same resolver the guard uses, so this is exactly
 * what a call would be allowed.
 */
export async function describePermissions(em: Em, resolver: PermissionResolver, subject: Subject, projectKey?: string) {
  const project = projectKey ? await findProject(em, projectKey) : null;
  const effective = await resolver.resolve(em, subject, project?.id ?? null);
  requireLive(effective);
  const sources = [...effective.grants.values()].flat();
  const projectIds = [...new Set(sources.map((s) => s.projectId).filter((id): id is string => id !== null))];
  const delegatorIds = [...new Set(sources.flatMap((s) => (s.kind === 'delegation' ? [s.delegatorId] : [])))];
  const projects = new Map((projectIds.length ? await em.find(Project, { id: { $in: projectIds } }) : []).map((p) => [p.id, p.key]));
  const delegators = new Map((delegatorIds.length ? await em.find(User, { id: { $in: delegatorIds } }) : []).map((u) => [u.id, u]));
  const keyOf = (id: string | null) => (id ? (projects.get(id) ?? id) : null);

  const permissions = [...effective.grants.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([permission, grants]) => ({
      permission,
      description: PERMISSIONS[permission],
      sources: grants.map((grant) =>
        grant.kind === 'role'
          ? { via: 'role' as const, role: grant.role, project_key: keyOf(grant.projectId) }
          : {
              via: 'delegation' as const,
              delegation_id: grant.delegationId,
              delegator: { id: grant.delegatorId, email: delegators.get(grant.delegatorId)?.email ?? null },
              project_key: keyOf(grant.projectId),
              expires_at: grant.expiresAt?.toISOString() ?? null,
            },
      ),
    }));
  return { project_key: project?.key ?? null, token_scopes: effective.scopes ? [...effective.scopes] : null, permissions };
}
