import { z } from 'zod';
import { connectionOutput, providerOutput } from '../outputs.ts';
import { PmConnection, PM_PROVIDERS, type PmProvider, type ConnectionAuth } from '../../db/entities/index.ts';
import { invalid } from '../../errors.ts';
import { operation, type OperationContext } from '../operation.ts';
import { checkBaseUrl } from '../../pm/net-guard.ts';
import { PROVIDER_LABEL, type Credentials } from '../../pm/service.ts';
import { credentialsRefused, TrackerError, trackerFailure } from '../../pm/errors.ts';
import {
  lentConnections, connectionView, credentialSecrets, findMyConnection, makeDefaultConnection, openCredentials, providerSummary, requireUser, storeConnection, trackerOf,
} from './connection-use.ts';
import { GrantExpired } from '../../pm/oauth/tokens.ts';
import { afterCursor, cursorField, decodeCursor, limitField, page } from '../pagination.ts';

// The caller's own tracker connections. They change only the caller's own record in Mandate, so
// they need pm:read (PM access at all); pm:write governs changes made in the tracker itself.

const secretField = (what: string) => z.string().trim().min(1, 'must not be empty').max(4000, 'must be at most 4000 characters').describe(what);
const nameField = z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters').regex(/^[\w .@-]+$/, 'may hold letters, digits, spaces and . _ @ -');

/** The tool's credential arguments, and the stored credential each one fills. */
const CREDENTIAL_INPUTS = { email: 'email', api_token: 'apiToken', token: 'token', api_key: 'apiKey' } as const satisfies Record<string, keyof Credentials>;
type CredentialInput = keyof typeof CREDENTIAL_INPUTS;

/** Which credential arguments each provider takes. */
const CREDENTIALS: Record<PmProvider, { auth: ConnectionAuth; fields: CredentialInput[] }> = {
  jira_cloud: { auth: 'api_token', fields: ['email', 'api_token'] },
  jira_dc: { auth: 'personal_access_token', fields: ['token'] },
  redmine: { auth: 'api_key', fields: ['api_key'] },
  openproject: { auth: 'api_key', fields: ['api_key'] },
};

function credentialsOf(provider: PmProvider, input: Partial<Record<CredentialInput, string | undefined>>): Credentials {
  const wanted = CREDENTIALS[provider].fields;
  for (const field of Object.keys(CREDENTIAL_INPUTS) as CredentialInput[]) {
    if (input[field] !== undefined && !wanted.includes(field)) throw invalid(field, `${PROVIDER_LABEL[provider]} takes ${wanted.join(' and ')}, not ${field}`);
  }
  const credentials: Credentials = {};
  for (const field of wanted) {
    const value = input[field];
    if (!value) throw invalid(field, `is required for ${PROVIDER_LABEL[provider]}`);
    credentials[CREDENTIAL_INPUTS[field]] = value;
  }
  return credentials;
}

/** Asks the tracker who the credentials belong to; a refusal is the caller's mistake (400). */
async function verify(ctx: OperationContext, provider: PmProvider, baseUrl: string, credentials: Credentials) {
  const label = PROVIDER_LABEL[provider];
  const tracker = ctx.pm.tracker(provider, baseUrl, credentials);
  try {
    return await tracker.whoami();
  } catch (error) {
    const secretField = CREDENTIALS[provider].fields.at(-1)!;
    if (credentialsRefused(error)) {
      throw invalid(secretField, `${label} at ${baseUrl} refused these credentials (HTTP ${error.status}); check them and try again`);
    }
    if (error instanceof TrackerError && error.status === 404) {
      throw invalid('base_url', `${baseUrl} does not look like a ${label} site (its "who am I" endpoint answered 404)`);
    }
    throw trackerFailure(error, label, credentialSecrets(credentials)) ?? error;
  }
}

export const listPmConnections = operation({
  name: 'list_pm_connections',
  servers: ['core', 'pm'],
  toolset: 'connections',
  route: { method: 'GET', path: '/api/v1/user/credentials' },
  title: 'List my PM connections',
  description:
    'Your own tracker connections with their status (connected, invalid, expired, unavailable) and non-secret details: provider, site, upstream account, verified at, scopes, expiry, which is the default. ' +
    '`providers` lists every provider with your status for it (not_connected when you have none). For an agent, `from_spawner` lists the connections its spawner lent this session. Credentials are never shown.',
  input: z.strictObject({ limit: limitField, cursor: cursorField }),
  output: z.strictObject({
    items: z.array(connectionOutput),
    providers: z.array(providerOutput),
    next_cursor: z.string().nullable(),
    from_spawner: z.array(connectionOutput).describe("an agent session's: its spawner's connections its PM tools may use"),
  }),
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const me = requireUser(ctx);
    const rows = await ctx.em.find(
      PmConnection,
      { user: me, ...afterCursor(decodeCursor(input.cursor), 'createdAt') },
      { orderBy: { createdAt: 'asc', id: 'asc' }, limit: input.limit + 1 },
    );
    const { items, next_cursor } = page(rows, input.limit, (row) => row.createdAt);
    const all = await ctx.em.find(PmConnection, { user: me });
    const lent = await lentConnections(ctx, me, 'pm:read');
    return { items: items.map(connectionView), providers: providerSummary([...all, ...lent], (provider) => ctx.pm.connectUrl(provider)), next_cursor, from_spawner: lent.map(connectionView) };
  },
});

export const addPmConnection = operation({
  name: 'add_pm_connection',
  servers: ['pm'],
  toolset: 'connections',
  route: { method: 'POST', path: '/api/v1/user/credentials', status: () => 201 },
  title: 'Add a PM connection',
  description:
    'Connect your own tracker account. provider: jira_cloud (email + api_token), jira_dc (token: a personal access token), redmine (api_key), openproject (api_key). ' +
    'base_url is the site, e.g. https://acme.atlassian.net. The credentials are checked by asking the tracker who they belong to, then stored encrypted; they are never shown again. ' +
    'Your first connection becomes your default; default: true makes this one the default.',
  input: z.strictObject({
    provider: z.enum(PM_PROVIDERS),
    name: nameField.optional(),
    base_url: z.string().trim().min(1, 'must not be empty').max(2000, 'must be at most 2000 characters'),
    email: z.email('must be an email address').max(320).optional(),
    api_token: secretField('Jira Cloud API token').optional(),
    token: secretField('Jira Data Center personal access token').optional(),
    api_key: secretField('Redmine or OpenProject API key').optional(),
    default: z.boolean().optional(),
  }),
  output: connectionOutput,
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'upstream-write',
  annotations: {},
  async run(ctx, input) {
    const me = requireUser(ctx);
    const baseUrl = checkBaseUrl(input.base_url, ctx.pm.settings.http.policy);
    const credentials = credentialsOf(input.provider, input);
    const account = await verify(ctx, input.provider, baseUrl, credentials);
    const name = input.name ?? `${input.provider}:${new URL(baseUrl).host}`.slice(0, 64);
    const connection = await storeConnection(ctx, me, { provider: input.provider, name, baseUrl, auth: CREDENTIALS[input.provider].auth, credentials, account }, input.default === true);
    ctx.setTarget(`pm_connection:${connection.id}`);
    return connectionView(connection);
  },
});

const connectionRef = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').describe('the connection\'s id or name');

export const removePmConnection = operation({
  name: 'remove_pm_connection',
  servers: ['pm'],
  toolset: 'connections',
  route: { method: 'DELETE', path: '/api/v1/user/credentials/{id}' },
  title: 'Remove a PM connection',
  description: 'Deletes one of your connections and its stored credentials (id or name). If it was your default, your oldest remaining connection becomes the default.',
  input: z.strictObject({ id: connectionRef }),
  output: z.strictObject({ removed: z.literal(true), id: z.string(), name: z.string(), new_default: z.string().nullable().describe('the connection that became your default, if this one was') }),
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: false },
  async run(ctx, input) {
    const connection = await findMyConnection(ctx, input.id, 'id');
    ctx.setTarget(`pm_connection:${connection.id}`);
    const me = requireUser(ctx);
    await ctx.em.nativeDelete(PmConnection, { id: connection.id });
    let newDefault: string | null = null;
    if (connection.isDefault) {
      const next = await ctx.em.findOne(PmConnection, { user: me }, { orderBy: { createdAt: 'asc' } });
      if (next) {
        await ctx.em.nativeUpdate(PmConnection, { id: next.id }, { isDefault: true });
        newDefault = next.name;
      }
    }
    return { removed: true, id: connection.id, name: connection.name, new_default: newDefault };
  },
});

export const setDefaultPmConnection = operation({
  name: 'set_default_pm_connection',
  servers: ['pm'],
  toolset: 'connections',
  route: { method: 'POST', path: '/api/v1/user/credentials/{id}/default' },
  title: 'Set my default PM connection',
  description: 'Makes one of your connections (id or name) the one PM tools use when no connection is given.',
  input: z.strictObject({ id: connectionRef }),
  output: connectionOutput,
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'write',
  annotations: { idempotentHint: true },
  async run(ctx, input) {
    const connection = await findMyConnection(ctx, input.id, 'id');
    ctx.setTarget(`pm_connection:${connection.id}`);
    await makeDefaultConnection(ctx.em, connection.user.id, connection.id);
    connection.isDefault = true;
    return connectionView(connection);
  },
});

export const testPmConnection = operation({
  name: 'test_pm_connection',
  servers: ['pm'],
  toolset: 'connections',
  route: { method: 'POST', path: '/api/v1/user/credentials/{id}/test' },
  title: 'Test a PM connection',
  description: 'Asks the tracker who your connection (id or name) belongs to and records the answer: connected, invalid (credentials refused) or unavailable (tracker unreachable). Returns the connection.',
  input: z.strictObject({ id: connectionRef }),
  output: connectionOutput,
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'upstream-write',
  annotations: { idempotentHint: true },
  async run(ctx, input) {
    const connection = await findMyConnection(ctx, input.id, 'id');
    ctx.setTarget(`pm_connection:${connection.id}`);
    const credentials = openCredentials(ctx, connection);
    const label = PROVIDER_LABEL[connection.provider];
    let changes: Partial<PmConnection>;
    try {
      const account = await trackerOf(ctx, connection, credentials).whoami();
      changes = { status: 'connected', statusReason: null, verifiedAt: ctx.now, accountId: account.id.slice(0, 200), accountName: account.name.slice(0, 200) };
    } catch (error) {
      if (error instanceof GrantExpired) return connectionView(Object.assign(connection, { status: 'expired', statusReason: error.message.slice(0, 500) }));
      const refused = credentialsRefused(error);
      const failure = trackerFailure(error, label, credentialSecrets(credentials));
      if (!refused && !failure) throw error;
      const reason = refused ? `${label} refused the credentials (HTTP ${error.status})` : failure!.message;
      changes = { status: refused ? 'invalid' : 'unavailable', statusReason: reason.slice(0, 500) };
    }
    // Recorded whatever the outcome: the test is what tells the connection's state.
    Object.assign(connection, changes);
    await ctx.em.flush();
    return connectionView(connection);
  },
});
