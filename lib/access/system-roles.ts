import { ALL_PERMISSIONS, type Permission } from './permissions.ts';

export interface SystemRole {
  name: string;
  description: string;
  permissions: readonly Permission[];
}

/** Seeded by migration and read-only at run time; a test keeps this list and the database equal. */
export const SYSTEM_ROLES: readonly SystemRole[] = [
  { name: 'admin', description: 'Everything Mandate can do.', permissions: ALL_PERMISSIONS },
  {
    name: 'developer',
    description: 'Works in PM tools with their own connection and installs MCP servers for themselves.',
    permissions: ['pm:read', 'pm:write', 'installs:write', 'installs:use'],
  },
  { name: 'viewer', description: 'Reads PM tools with their own connection.', permissions: ['pm:read'] },
  { name: 'agent', description: 'An AI agent acting in PM tools and the MCP servers installed for it.', permissions: ['pm:read', 'pm:write', 'installs:use'] },
  {
    name: 'auditor',
    description: 'Reads the audit log and every administrative record, changes nothing.',
    permissions: [
      'audit:read', 'users:read', 'roles:read', 'delegations:read', 'tokens:read', 'sessions:read', 'installs:read', 'projects:read',
    ],
  },
];

export const SYSTEM_ROLE_NAMES = SYSTEM_ROLES.map((role) => role.name);
