import { z } from 'zod';
import {
  AUDIT_OUTCOMES, CONNECTION_AUTH, CONNECTION_STATES, INSTALL_SCOPES, MCP_TRANSPORTS, PM_PROVIDERS, SESSION_TRANSPORTS, USER_TYPES,
} from '../db/entities/index.ts';

// What each operation returns, as zod schemas: the tools' `outputSchema`, the REST routes'
// response bodies in the OpenAPI document, and (under MANDATE_VERIFY_OPERATIONS) checked against every
// result the test suite sees. Strict objects, so a field no schema names is a failure, not a drift.

export const isoTime = z.string().describe('ISO 8601 date-time');
export const isoTimeOrNull = isoTime.nullable();
export const id = z.string();

export const userOutput = z.strictObject({
  id,
  name: z.string(),
  email: z.string(),
  display_name: z.string().nullable(),
  type: z.enum(USER_TYPES),
  active: z.boolean(),
  created_at: isoTime,
  deactivated_at: isoTimeOrNull,
});

export const tokenOutput = z.strictObject({
  id,
  user_id: id,
  name: z.string(),
  prefix: z.string(),
  scopes: z.array(z.string()).nullable(),
  expires_at: isoTimeOrNull,
  last_used_at: isoTimeOrNull,
  created_at: isoTime,
  revoked_at: isoTimeOrNull,
});

export const delegationOutput = z.strictObject({
  id,
  delegator_id: id,
  delegate_id: id,
  permission: z.string(),
  project_key: z.string().nullable(),
  expires_at: isoTimeOrNull,
  reason: z.string().nullable(),
  created_at: isoTime,
  revoked_at: isoTimeOrNull,
});

export const sessionOutput = z.strictObject({
  id,
  user_id: id,
  transport: z.enum(SESSION_TRANSPORTS),
  servers: z.array(z.string()),
  client_name: z.string().nullable(),
  client_address: z.string().nullable(),
  authenticated_with: z.enum(['api_token', 'password']),
  token_id: id.nullable(),
  created_at: isoTime,
  last_seen_at: isoTime,
  ended_at: isoTimeOrNull,
  end_reason: z.string().nullable(),
});

export const roleOutput = z.strictObject({
  id,
  name: z.string(),
  description: z.string().nullable(),
  system: z.boolean(),
  permissions: z.array(z.string()),
  created_at: isoTime,
  updated_at: isoTime,
});

export const assignmentOutput = z.strictObject({
  id,
  user_id: id,
  role: z.string(),
  project_key: z.string().nullable(),
  granted_by_id: id.nullable(),
  created_at: isoTime,
});

export const agentSessionOutput = z.strictObject({
  id,
  agent_id: id,
  spawner_id: id.nullable(),
  role: z.string(),
  token_id: id.nullable(),
  created_at: isoTime,
  expires_at: isoTime,
  ended_at: isoTimeOrNull,
  end_reason: z.string().nullable(),
});

export const auditOutput = z.strictObject({
  id,
  at: isoTime,
  actor_id: id.nullable(),
  actor_name: z.string(),
  on_behalf_of: z.array(z.strictObject({ user_id: id, via: z.literal('delegation'), delegation_id: id })),
  operation: z.string(),
  permission: z.string().nullable(),
  project_key: z.string().nullable(),
  target: z.string().nullable(),
  outcome: z.enum(AUDIT_OUTCOMES),
  error_code: z.string().nullable(),
  message: z.string().nullable(),
  detail: z.record(z.string(), z.unknown()).describe('the redacted input, and what else the event recorded'),
  request_id: z.string().nullable(),
  session_id: z.string().nullable(),
});

export const credentialFieldOutput = z.strictObject({ name: z.string(), description: z.string(), required: z.boolean() });

export const catalogOutput = z.strictObject({
  id,
  name: z.string(),
  description: z.string(),
  transport: z.enum(MCP_TRANSPORTS),
  url: z.string().nullable(),
  command: z.string().nullable(),
  args: z.array(z.string()),
  credential_fields: z.array(credentialFieldOutput),
  headers: z.record(z.string(), z.string()).describe('header templates; {FIELD} stands for a secret, never filled in here'),
  query: z.record(z.string(), z.string()).describe('query parameter templates, as headers'),
  installations: z.number().int().optional(),
  created_at: isoTime,
  updated_at: isoTime,
});

export const userSummaryOutput = z.strictObject({ id, email: z.string(), name: z.string(), display_name: z.string().nullable(), active: z.boolean() });

export const installationOutput = z.strictObject({
  id,
  catalog_id: id,
  catalog_name: z.string(),
  transport: z.enum(MCP_TRANSPORTS),
  scope: z.enum(INSTALL_SCOPES),
  project_key: z.string().nullable(),
  owner_id: id.nullable(),
  owner: userSummaryOutput.nullable(),
  installed_by_id: id.nullable(),
  everyone: z.boolean(),
  users: z.array(userSummaryOutput),
  user_count: z.number().int().nullable(),
  secrets: z.record(z.string(), z.enum(['set', 'not set'])).describe('each credential field: "set" or "not set", never its value'),
  usable: z.boolean(),
  unusable_reasons: z.array(z.string()),
  created_at: isoTime,
  updated_at: isoTime,
});

export const connectionOutput = z.strictObject({
  id,
  provider: z.enum(PM_PROVIDERS),
  name: z.string(),
  site: z.string(),
  status: z.enum(CONNECTION_STATES),
  status_reason: z.string().nullable(),
  auth: z.enum(CONNECTION_AUTH),
  account: z.strictObject({ id: z.string(), name: z.string().nullable() }).nullable(),
  verified_at: isoTimeOrNull,
  scopes: z.array(z.string()).nullable(),
  expires_at: isoTimeOrNull,
  default: z.boolean(),
  created_at: isoTime,
});

export const providerOutput = z.strictObject({
  provider: z.enum(PM_PROVIDERS),
  label: z.string(),
  status: z.enum([...CONNECTION_STATES, 'not_connected']),
  connections: z.number().int(),
  connect_url: z.string().optional().describe('where to connect in a browser, for providers that offer it'),
});

export const permissionSourceOutput = z.discriminatedUnion('via', [
  z.strictObject({ via: z.literal('role'), role: z.string(), project_key: z.string().nullable() }),
  z.strictObject({
    via: z.literal('delegation'),
    delegation_id: id,
    delegator: z.strictObject({ id, email: z.string().nullable() }),
    project_key: z.string().nullable(),
    expires_at: isoTimeOrNull,
  }),
]);

export const effectivePermissionsOutput = z.strictObject({
  project_key: z.string().nullable(),
  token_scopes: z.array(z.string()).nullable(),
  permissions: z.array(z.strictObject({ permission: z.string(), description: z.string(), sources: z.array(permissionSourceOutput) })),
});

/** A page of a list: the cursor always, the offset when paged by offset. */
export function cursorPage<Item extends z.ZodType>(item: Item) {
  return z.strictObject({ items: z.array(item), next_cursor: z.string().nullable(), next_offset: z.number().int().nullable().optional() });
}

export function itemsOf<Item extends z.ZodType>(item: Item) {
  return z.strictObject({ items: z.array(item) });
}
