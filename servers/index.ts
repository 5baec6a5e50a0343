// Which servers exist, and which each agent role gets: entrypoint.sh and `mandate config` read this.
import type { Toolset } from '../lib/mcp/toolset.ts';
import { core } from './core.ts';
import { admin } from './admin.ts';
import { pm } from './pm.ts';

export const SERVERS: Record<string, Toolset> = { core, admin, pm };
export type ServerName = 'core' | 'admin' | 'pm';

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
