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

// The tools of the MCP servers installed for the caller, namespaced <namespace>__<tool>: no
// operations of its own, it lists and calls them through list_gateway_tools and call_gateway_tool.
const gateway: Toolset = {
  name: 'gateway',
  title: 'Mandate gateway',
  instructions:
    "Mandate gateway: the tools of the MCP servers installed for you, named <server>__<tool>. Mandate holds their secrets and checks and audits every call; a tool whose definition changed is held back until an admin reviews it.",
  operations: [],
  gateway: true,
};

/** A server entrypoint.sh can start: one of the operations' servers, or the gateway. */
export type ToolsetName = ServerName | 'gateway';
export type { ServerName };
export const SERVERS: Readonly<Record<string, Toolset>> = { core, admin, pm, gateway };

export interface RoleServers {
  servers: ToolsetName[];
  /** Only read-only tools, whatever the permissions allow. */
  readOnly: boolean;
}

export const AGENT_ROLES: Record<string, RoleServers> = {
  admin: { servers: ['core', 'admin', 'pm', 'gateway'], readOnly: false },
  developer: { servers: ['core', 'pm', 'gateway'], readOnly: false },
  // Read-only roles get no gateway: what an installed server's tool does is its server's word only.
  viewer: { servers: ['core', 'pm'], readOnly: true },
  auditor: { servers: ['core', 'admin'], readOnly: true },
  agent: { servers: ['core', 'pm', 'gateway'], readOnly: false },
};
