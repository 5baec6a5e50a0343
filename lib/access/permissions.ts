/** The one catalogue of permissions: `resource:action`, each with what it lets a caller do. */
export const PERMISSIONS = {
  'users:read': 'See users, their roles, delegations and token metadata.',
  'users:write': 'Create, update, deactivate, reactivate and delete users; reset passwords.',
  'roles:read': 'See roles, their permissions and members.',
  'roles:write': 'Create, update and delete custom roles; assign and remove roles.',
  'delegations:read': "See every user's delegations.",
  'delegations:write': "Revoke any user's delegation (a delegation is only ever created in its delegator's own name).",
  'tokens:read': "See metadata of other users' API tokens.",
  'tokens:write': 'Create and revoke API tokens for other users.',
  'sessions:read': "See other users' sessions.",
  'sessions:write': "End other users' sessions.",
  'projects:read': 'See projects, their members and the tracker projects bound to them.',
  'projects:write': 'Create, rename and delete projects; bind tracker projects to them.',
  'installs:read': 'See every MCP server installation.',
  'installs:write': 'Install and uninstall MCP servers for yourself.',
  'installs:admin': 'Manage the MCP catalog and installations for other users; review quarantined tools.',
  'installs:use': 'Call the tools of MCP servers installed for you, through the Mandate gateway.',
  'pm:read': 'Read projects and issues in your PM tools with your own connection.',
  'pm:write': 'Create and change issues in your PM tools with your own connection.',
  'audit:read': 'Query the audit log.',
} as const;

export type Permission = keyof typeof PERMISSIONS;

export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export function isPermission(value: string): value is Permission {
  return Object.hasOwn(PERMISSIONS, value);
}
