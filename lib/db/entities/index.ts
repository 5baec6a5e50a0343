export { User, USER_TYPES, type UserType } from './user.ts';
export { Project } from './project.ts';
export { ProjectBinding, TRACKER_KINDS, BINDINGS_CHANGE_SUBJECT, type TrackerKind } from './project-binding.ts';
export { Role } from './role.ts';
export { RoleAssignment } from './role-assignment.ts';
export { Delegation } from './delegation.ts';
export { ApiToken } from './api-token.ts';
export { AuditEvent, AUDIT_OUTCOMES, type AuditOutcome, type OnBehalfOf } from './audit-event.ts';
export { AccessChange, AccessChangePruned } from './access-change.ts';
export { Session, SESSION_TRANSPORTS, type SessionTransport } from './session.ts';
export { AgentSession } from './agent-session.ts';
export { AgentConnection } from './agent-connection.ts';
export { LoginLimit } from './login-limit.ts';
export { McpCatalogEntry, MCP_TRANSPORTS, type McpTransport, type CredentialField } from './mcp-catalog-entry.ts';
export { McpInstallation, INSTALL_SCOPES, type InstallScope } from './mcp-installation.ts';
export { McpToolPin, PIN_STATUSES, pinStatus, type PinStatus, type ToolDefinition } from './mcp-tool-pin.ts';
export { GATEWAY_CHANGE_SUBJECT } from './gateway-change.ts';
export {
  PmConnection, PM_PROVIDERS, CONNECTION_STATES, CONNECTION_AUTH, type PmProvider, type ConnectionState, type ConnectionAuth,
} from './pm-connection.ts';
export { PmOauthState } from './pm-oauth-state.ts';
export { OAuthRecord } from './oauth-record.ts';

import { User } from './user.ts';
import { Project } from './project.ts';
import { ProjectBinding } from './project-binding.ts';
import { Role } from './role.ts';
import { RoleAssignment } from './role-assignment.ts';
import { Delegation } from './delegation.ts';
import { ApiToken } from './api-token.ts';
import { AuditEvent } from './audit-event.ts';
import { AccessChange, AccessChangePruned } from './access-change.ts';
import { Session } from './session.ts';
import { AgentSession } from './agent-session.ts';
import { AgentConnection } from './agent-connection.ts';
import { LoginLimit } from './login-limit.ts';
import { McpCatalogEntry } from './mcp-catalog-entry.ts';
import { McpInstallation } from './mcp-installation.ts';
import { McpToolPin } from './mcp-tool-pin.ts';
import { PmConnection } from './pm-connection.ts';
import { PmOauthState } from './pm-oauth-state.ts';
import { OAuthRecord } from './oauth-record.ts';

export const ALL_ENTITIES = [User, Project, ProjectBinding, Role, RoleAssignment, Delegation, ApiToken, AuditEvent, AccessChange, AccessChangePruned, Session, AgentSession, AgentConnection, LoginLimit, McpCatalogEntry, McpInstallation, McpToolPin, PmConnection, PmOauthState, OAuthRecord];
