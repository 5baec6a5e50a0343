import type { Permission } from '../access/permissions.ts';
import { SYSTEM_ROLES } from '../access/system-roles.ts';

export const AGENT_LIFETIME_DEFAULT_MINUTES = 120;
export const AGENT_LIFETIME_MAX_MINUTES = 24 * 60;

/** A permission the spawner holds through a role, globally (projectId null) or for one project. */
export interface RoleHeld {
  permission: Permission;
  projectId: string | null;
}

export interface AgentGrant {
  permission: Permission;
  projectId: string | null;
}

export interface Skipped {
  permission: Permission;
  reason: string;
}

const ADMIN_PERMISSIONS = SYSTEM_ROLES.find((role) => role.name === 'admin')!.permissions;

/**
 * What an agent started for `rolePermissions` receives: each permission of the role (plus the
 * admin permissions with `delegateAdmin`) that the spawner holds through a role, as a delegation
 * from the spawner (global where the spawner holds it globally, else per project). Everything
 * else is reported as skipped with the reason, never silently dropped.
 */
export function planAgentGrants(input: {
  rolePermissions: readonly string[];
  delegateAdmin: boolean;
  roleHeld: readonly RoleHeld[];
  /** What the spawner holds right now, through anything (a scoped token narrows it). */
  effective: ReadonlySet<Permission>;
  /** Permissions the spawner's token scopes exclude, if it calls with a scoped token. */
  scopes: readonly Permission[] | null;
}): { grants: AgentGrant[]; skipped: Skipped[] } {
  const wanted = new Set<Permission>(input.rolePermissions as Permission[]);
  if (input.delegateAdmin) for (const permission of ADMIN_PERMISSIONS) wanted.add(permission);
  const grants: AgentGrant[] = [];
  const skipped: Skipped[] = [];
  for (const permission of [...wanted].sort()) {
    if (input.scopes && !input.scopes.includes(permission)) {
      skipped.push({ permission, reason: "not in the scopes of the token you are calling with" });
      continue;
    }
    const held = input.roleHeld.filter((row) => row.permission === permission);
    if (held.some((row) => row.projectId === null)) {
      grants.push({ permission, projectId: null });
    } else if (held.length > 0) {
      for (const projectId of new Set(held.map((row) => row.projectId))) grants.push({ permission, projectId });
    } else {
      skipped.push({
        permission,
        reason: input.effective.has(permission)
          ? 'you hold it only through a delegation, which cannot be delegated again'
          : 'you do not hold it',
      });
    }
  }
  return { grants, skipped };
}
