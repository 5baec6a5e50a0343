import type { AnyOperation } from './operation.ts';
import { createUser, deactivateUser, deleteUser, getUser, listUsers, reactivateUser, resetPassword, updateUser } from './users.ts';
import {
  assignRole, createRole, deleteRole, getRole, getUserPermissions, listPermissions, listRoleMembers, listRoles, removeRole, updateRole,
} from './roles.ts';
import { createDelegation, getDelegation, listDelegations, revokeDelegation } from './delegations.ts';
import { createTokenForUser, listUserTokens, revokeUserToken } from './tokens.ts';
import { listUserSessions, revokeUserSessions } from './sessions.ts';
import { queryAudit } from './audit-log.ts';
import { createMyToken, getMyPermissions, health, listMyDelegations, listMyTokens, revokeMyToken, whoami } from './self.ts';
import { endAgentSessionOp, listMyAgentSessions, startAgentSession } from './agents.ts';
import { createMcpCatalogEntry, deleteMcpCatalogEntry, getMcpCatalogEntry, listMcpCatalog, updateMcpCatalogEntry } from './mcp-catalog.ts';
import { getMcpServer, installMcpServer, listMcpServers, listMyMcpServers, uninstallMcpServer, updateMcpServer } from './installs.ts';
import { PM_BROWSER_OPERATIONS, PM_OPERATIONS } from './pm/index.ts';
import { listPmConnections } from './pm/connections.ts';

export {
  createUser, deactivateUser, deleteUser, getUser, listUsers, reactivateUser, resetPassword, updateUser,
  assignRole, createRole, deleteRole, getRole, getUserPermissions, listPermissions, listRoleMembers, listRoles, removeRole, updateRole,
  createDelegation, getDelegation, listDelegations, revokeDelegation,
  createTokenForUser, listUserTokens, revokeUserToken,
  listUserSessions, revokeUserSessions, queryAudit,
  createMyToken, getMyPermissions, health, listMyDelegations, listMyTokens, revokeMyToken, whoami,
  endAgentSessionOp, listMyAgentSessions, startAgentSession,
  createMcpCatalogEntry, deleteMcpCatalogEntry, getMcpCatalogEntry, listMcpCatalog, updateMcpCatalogEntry,
  getMcpServer, installMcpServer, listMcpServers, listMyMcpServers, uninstallMcpServer, updateMcpServer,
};

/** Operations about the caller itself: the `core` toolset. */
export const SELF_OPERATIONS: AnyOperation[] = [
  whoami, getMyPermissions, listMyDelegations, listMyTokens, createMyToken, revokeMyToken,
  startAgentSession, endAgentSessionOp, listMyAgentSessions,
  listMcpCatalog, listMyMcpServers, getMcpServer, installMcpServer, updateMcpServer, uninstallMcpServer,
  listPmConnections,
  health,
] as AnyOperation[];

/** Tracker connections and tools with the caller's own credentials: the `pm` toolset. */
export { PM_OPERATIONS };

/** Administration of other users and the platform: the `admin` toolset. */
export const ADMIN_OPERATIONS: AnyOperation[] = [
  listUsers, getUser, createUser, updateUser, deactivateUser, reactivateUser, deleteUser, resetPassword,
  listRoles, getRole, createRole, updateRole, deleteRole, assignRole, removeRole, listRoleMembers, getUserPermissions, listPermissions,
  listDelegations, getDelegation, createDelegation, revokeDelegation,
  createTokenForUser, listUserTokens, revokeUserToken,
  listUserSessions, revokeUserSessions,
  listMcpCatalog, getMcpCatalogEntry, createMcpCatalogEntry, updateMcpCatalogEntry, deleteMcpCatalogEntry,
  listMcpServers, getMcpServer, installMcpServer, updateMcpServer, uninstallMcpServer,
  queryAudit,
] as AnyOperation[];

/**
 * Every operation, by name: the one registry the servers, REST routes and CLI draw from. A
 * null-prototype object, so a tool named `__proto__` or `constructor` finds nothing; two operations
 * of one name stop the process at load.
 */
export const OPERATIONS: Readonly<Record<string, AnyOperation>> = registry([...SELF_OPERATIONS, ...ADMIN_OPERATIONS, ...PM_OPERATIONS, ...PM_BROWSER_OPERATIONS]);

function registry(operations: readonly AnyOperation[]): Readonly<Record<string, AnyOperation>> {
  const byName: Record<string, AnyOperation> = Object.create(null);
  for (const op of operations) {
    const existing = byName[op.name];
    if (existing && existing !== op) throw new Error(`two operations are named ${op.name}`);
    byName[op.name] = op;
  }
  return Object.freeze(byName);
}
