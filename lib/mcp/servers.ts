// Which MCP servers exist (each a toolset of operations), and which each agent role gets:
// servers/*.ts (the stdio entry points), entrypoint.sh, `mandate config` and the HTTP face read this.
import { operationsOf } from '../ops/index.ts';
import type { ServerName } from '../ops/operation.ts';
import type { Toolset } from './toolset.ts';

const core: Toolset = {
  name: 'core',
  title: 'Mandate core',
  instructions:
    'Mandate core: you act under the mandate of the user whose token started this server. whoami says who that is, get_my_permissions what you may do and why.',
  operations: operationsOf('core'),
};

const admin: Toolset = {
  name: 'admin',
  title: 'Mandate admin',
  instructions:
    'Mandate admin: manage users, roles, delegations, API tokens, sessions and read the audit log. Every call is checked against your permissions and audited.',
  operations: operationsOf('admin'),
};

const pm: Toolset = {
  name: 'pm',
  title: 'Mandate PM',
  instructions: 'Mandate PM: issues and projects in your own tracker, with your own connection.',
  operations: operationsOf('pm'),
};

export type { ServerName };
export const SERVERS: Readonly<Record<string, Toolset>> = { core, admin, pm };

export interface RoleServers {
  servers: ServerName[];
  /** Only read-only tools, whatever the permissions allow. */
  readOnly: boolean;
}

export const AGENT_ROLES: Record<string, RoleServers> = {
  admin: { servers: ['core', 'admin', 'pm'], readOnly: false },
  developer: { servers: ['core', 'pm'], readOnly: false },
  viewer: { servers: ['core', 'pm'], readOnly: true },
  auditor: { servers: ['core', 'admin'], readOnly: true },
  agent: { servers: ['core', 'pm'], readOnly: false },
};
