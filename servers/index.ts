// The servers and the roles' choice of them live in lib/mcp/servers.ts; servers/ holds the entry points.
export { AGENT_ROLES, SERVERS, type RoleServers, type ServerName } from '../lib/mcp/servers.ts';
