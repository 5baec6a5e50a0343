import { definedOperations, isOperation, SERVER_NAMES, type AnyOperation, type ServerName } from './operation.ts';
import * as users from './users.ts';
import * as roles from './roles.ts';
import * as delegations from './delegations.ts';
import * as tokens from './tokens.ts';
import * as sessions from './sessions.ts';
import * as auditLog from './audit-log.ts';
import * as self from './self.ts';
import * as agents from './agents.ts';
import * as catalog from './mcp-catalog.ts';
import * as installs from './installs.ts';
import * as pm from './pm/index.ts';
import * as oauthGrants from './oauth-grants.ts';
import * as projects from './projects.ts';
import * as gateway from './gateway/index.ts';
import { sealPreloadedOperations } from './preloaded.ts';

// The one registry: every operation a module below exports, each declaring its own servers (and,
// for PM, its toolset). The MCP servers, REST routes, remote calls, CLI and generated docs are all
// derived from it; defining an operation in one of these modules is all it takes to add one.
export * from './users.ts';
export * from './roles.ts';
export * from './delegations.ts';
export * from './tokens.ts';
export * from './sessions.ts';
export * from './audit-log.ts';
export * from './self.ts';
export * from './agents.ts';
export * from './mcp-catalog.ts';
export * from './installs.ts';
export * from './pm/index.ts';
export * from './oauth-grants.ts';
export * from './projects.ts';
export * from './gateway/index.ts';

const MODULES = [users, roles, delegations, tokens, sessions, auditLog, self, agents, catalog, installs, pm, oauthGrants, projects, gateway];

/** Every operation once, by name: the order tools are listed and documented in. */
export const ALL_OPERATIONS: readonly AnyOperation[] = Object.freeze(
  [...new Set([...MODULES.flatMap((module) => Object.values(module).filter(isOperation)), ...sealPreloadedOperations()])].sort((a, b) => a.name.localeCompare(b.name)),
);

// An operation defined but not exported, or hidden by two `export *` of one name, would silently
// be no tool and no route: refused at load instead.
for (const op of definedOperations()) {
  if (!ALL_OPERATIONS.includes(op)) throw new Error(`operation ${op.name} is defined but not in the registry: export it (under a name no other module uses)`);
}

/**
 * Every operation, by name. A null-prototype object, so a tool named `__proto__` or `constructor`
 * finds nothing; two operations of one name stop the process at load.
 */
export const OPERATIONS: Readonly<Record<string, AnyOperation>> = registry(ALL_OPERATIONS);

/** The operations one MCP server serves as tools. */
export const operationsOf = (server: ServerName): AnyOperation[] => ALL_OPERATIONS.filter((op) => op.servers.includes(server));

export function registry(operations: readonly AnyOperation[]): Readonly<Record<string, AnyOperation>> {
  const byName: Record<string, AnyOperation> = Object.create(null);
  for (const op of operations) {
    const existing = byName[op.name];
    if (existing && existing !== op) throw new Error(`two operations are named ${op.name}`);
    for (const server of op.servers) if (!SERVER_NAMES.includes(server)) throw new Error(`${op.name} names an unknown server "${server}"`);
    byName[op.name] = op;
  }
  return Object.freeze(byName);
}
