import type { Runtime } from '../../lib/runtime.ts';
import { makeToken, makeUser } from './fixtures.ts';
import { recordSecret } from './db.ts';

/** One user per system role, each with an API token (raw token recorded for the secret sweep). */
export async function peopleForRoles(runtime: Runtime) {
  const people: Record<string, { id: string; email: string; token: string; tokenId: string }> = {};
  for (const role of ['admin', 'developer', 'viewer', 'auditor', 'agent']) {
    const user = await makeUser(runtime, { email: `${role}-${Math.random().toString(36).slice(2, 8)}@example.test`, roles: [role], type: role === 'agent' ? 'agent' : 'human' });
    const { token, raw } = await makeToken(runtime, user);
    people[role] = { id: user.id, email: user.email, token: recordSecret(raw), tokenId: token.id };
  }
  return people as Record<'admin' | 'developer' | 'viewer' | 'auditor' | 'agent', { id: string; email: string; token: string; tokenId: string }>;
}

// The tool lists each role must see: written out here as the specification, not derived from code.
const CORE_INSTALL_READ_TOOLS = ['get_mcp_server', 'list_mcp_catalog', 'list_mcp_server_tools', 'list_my_mcp_servers'];
const CORE_INSTALL_WRITE_TOOLS = ['install_mcp_server', 'set_mcp_server_tool_enabled', 'test_mcp_server', 'uninstall_mcp_server', 'update_mcp_server'];
const CORE_BASE_TOOLS = [
  'create_my_token', 'end_agent_session', 'get_my_permissions', 'health', 'list_my_agent_sessions', 'list_my_delegations',
  'list_my_tokens', 'revoke_my_token', 'start_agent_session', 'whoami', 'list_my_oauth_grants', 'revoke_my_oauth_grant',
];
export const CORE_TOOLS = [...CORE_BASE_TOOLS, ...CORE_INSTALL_READ_TOOLS, ...CORE_INSTALL_WRITE_TOOLS];
// PM: read-only tools (pm:read), connection management (pm:read), tracker changes (pm:write).
// delete_issue and delete_attachment are served only where MANDATE_PM_ALLOW_DELETE=true.
export const PM_READ_TOOLS = [
  'list_pm_connections', 'search_issues', 'get_issue', 'list_transitions', 'list_comments', 'list_projects', 'get_project', 'list_issue_types',
  'get_create_fields', 'search_fields', 'list_statuses', 'list_priorities', 'search_users', 'list_link_types', 'list_boards', 'list_sprints',
  'list_sprint_issues', 'list_worklogs', 'list_attachments', 'get_attachment',
];
export const PM_CONNECTION_TOOLS = ['add_pm_connection', 'connect_pm_oauth', 'remove_pm_connection', 'set_default_pm_connection', 'test_pm_connection'];
export const PM_WRITE_TOOLS = [
  'create_issue', 'update_issue', 'transition_issue', 'assign_issue', 'add_comment', 'edit_comment', 'link_issues', 'add_remote_link', 'set_parent',
  'move_to_sprint', 'move_to_backlog', 'add_worklog', 'add_attachment',
];
export const PM_TOOLS = [...PM_READ_TOOLS, ...PM_CONNECTION_TOOLS, ...PM_WRITE_TOOLS];
export const CORE_READ_ONLY_TOOLS = ['get_my_permissions', 'health', 'list_my_agent_sessions', 'list_my_delegations', 'list_my_tokens', 'list_my_oauth_grants', 'whoami', ...CORE_INSTALL_READ_TOOLS];
export const ADMIN_TOOLS = [
  'assign_role', 'create_delegation', 'create_role', 'create_token_for_user', 'create_user', 'deactivate_user', 'delete_role', 'delete_user',
  'get_delegation', 'get_role', 'get_user', 'get_user_permissions', 'list_delegations', 'list_permissions', 'list_role_members', 'list_roles',
  'list_user_sessions', 'list_user_tokens', 'list_users', 'query_audit', 'reactivate_user', 'remove_role', 'reset_password', 'revoke_delegation',
  'revoke_user_sessions', 'revoke_user_token', 'update_role', 'update_user',
  'create_mcp_catalog_entry', 'delete_mcp_catalog_entry', 'get_mcp_catalog_entry', 'list_mcp_catalog', 'update_mcp_catalog_entry',
  'get_mcp_server', 'install_mcp_server', 'list_mcp_servers', 'uninstall_mcp_server', 'update_mcp_server',
  'list_mcp_server_tools', 'set_mcp_server_tool_enabled', 'test_mcp_server', 'list_quarantined_mcp_tools', 'approve_mcp_tool', 'reject_mcp_tool',
  'delete_oauth_client', 'list_oauth_clients', 'list_user_oauth_grants', 'register_oauth_client', 'revoke_user_oauth_grant',
  'bind_tracker_project', 'create_mandate_project', 'delete_mandate_project', 'get_mandate_project', 'list_mandate_project_members', 'list_mandate_projects',
  'unbind_tracker_project', 'update_mandate_project',
];
/** Admin tools that core does not serve too. */
export const ADMIN_ONLY_TOOLS = ADMIN_TOOLS.filter((name) => !CORE_TOOLS.includes(name));
export const AUDITOR_ADMIN_TOOLS = [
  'get_delegation', 'get_role', 'get_user', 'get_user_permissions', 'list_delegations', 'list_permissions', 'list_role_members', 'list_roles',
  'list_user_sessions', 'list_user_tokens', 'list_users', 'query_audit',
  'get_mcp_catalog_entry', 'get_mcp_server', 'list_mcp_catalog', 'list_mcp_server_tools', 'list_mcp_servers',
  'list_oauth_clients', 'list_user_oauth_grants',
  'get_mandate_project', 'list_mandate_project_members', 'list_mandate_projects',
];
const union = (...lists: string[][]) => [...new Set(lists.flat())].sort();
export const EXPECTED_TOOLS: Record<string, string[]> = {
  admin: union(CORE_TOOLS, ADMIN_TOOLS, PM_TOOLS),
  // developer has installs:write; the agent role does not.
  developer: union(CORE_TOOLS, PM_TOOLS),
  // viewer: core and pm read-only (list_pm_connections is core's too).
  viewer: union(CORE_READ_ONLY_TOOLS, PM_READ_TOOLS),
  auditor: union(CORE_READ_ONLY_TOOLS, AUDITOR_ADMIN_TOOLS),
  agent: union(CORE_BASE_TOOLS, CORE_INSTALL_READ_TOOLS, PM_TOOLS),
  // (the same as CORE_TOOLS_WITHOUT_INSTALL_WRITE, spelled out)
};
/** What core lists to someone without installs:write (agents, viewers with a delegation...). */
export const CORE_TOOLS_WITHOUT_INSTALL_WRITE = union(CORE_BASE_TOOLS, CORE_INSTALL_READ_TOOLS);
/** What the core server lists to someone holding pm:read beyond CORE_TOOLS: their PM connections' status. */
export const withPmStatus = (tools: string[]) => union(tools, ['list_pm_connections']);
/** Every core and admin tool, each once. */
export const ALL_CORE_ADMIN_TOOLS = union(CORE_TOOLS, ADMIN_TOOLS);
