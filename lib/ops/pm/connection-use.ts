import { randomUUID } from 'node:crypto';
import { isUuid } from '../../ids.ts';
import { OpError } from '../../errors.ts';
import { AgentConnection, PmConnection, PM_PROVIDERS, type PmProvider } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import type { OperationContext } from '../operation.ts';
import { callerUserId } from '../../identity/caller.ts';
import { PROVIDER_LABEL, type Credentials } from '../../pm/service.ts';
import { trackerFailure, TrackerError } from '../../pm/errors.ts';
import type { Tracker } from '../../pm/provider.ts';
import { GrantExpired, needsRefresh } from '../../pm/oauth/tokens.ts';
import { scrubValue } from '../../redact.ts';
import type { Permission } from '../../access/permissions.ts';

// A caller's own tracker connections: found only among the caller's rows (anyone else's id is
// "not found"), opened with the vault, and marked invalid when the tracker rejects them.

export const connectionContext = (id: string) => `pm_connection:${id}`;

const HOW_TO_CONNECT =
  'Add one with add_pm_connection (provider jira_cloud with email + api_token, jira_dc with a personal access token, redmine or openproject with an API key), ' +
  'or over HTTP: POST /api/v1/user/credentials.';

function howToConnect(ctx: OperationContext): string {
  const url = ctx.pm.connectUrl('jira_cloud');
  return url ? `${HOW_TO_CONNECT} For Jira Cloud you can also connect in a browser with your Atlassian account: open ${url}` : HOW_TO_CONNECT;
}

function reconnect(ctx: OperationContext, connection: PmConnection): string {
  const url = ctx.pm.connectUrl(connection.provider);
  return url ? `Connect again: open ${url} in a browser.` : 'Add the connection again with fresh credentials.';
}

export function connectionView(connection: PmConnection) {
  return {
    id: connection.id,
    provider: connection.provider,
    name: connection.name,
    site: connection.baseUrl,
    status: connection.status,
    status_reason: connection.statusReason ?? null,
    auth: connection.auth,
    account: connection.accountId ? { id: connection.accountId, name: connection.accountName ?? null } : null,
    verified_at: connection.verifiedAt?.toISOString() ?? null,
    scopes: connection.scopes,
    expires_at: connection.expiresAt?.toISOString() ?? null,
    default: connection.isDefault,
    created_at: connection.createdAt.toISOString(),
  };
}

/** The user whose connections a call concerns (a system caller has none). */
export function requireUser(ctx: OperationContext): string {
  const me = callerUserId(ctx.caller);
  if (me === null) throw new OpError('invalid_input', 'PM connections belong to users; a system caller has none');
  return me;
}

/** One of the caller's connections by id or name; anyone else's is "not found". */
export async function findMyConnection(ctx: OperationContext, ref: string, field = 'connection'): Promise<PmConnection> {
  const me = requireUser(ctx);
  const where = isUuid(ref) ? { id: ref, user: me } : { name: ref, user: me };
  const connection = await ctx.em.findOne(PmConnection, where);
  if (!connection) throw new OpError('not_found', `you have no PM connection "${ref}" (list_pm_connections shows yours)`, { field });
  return connection;
}

/**
 * The spawner's connections lent to the caller's live agent session (chosen when it started),
 * oldest first; none for anyone else. A loan counts only while the caller holds `permission`
 * through a delegation from that spawner: a spawner deactivated or no longer holding it through a
 * role lends nothing, whoever else delegated the permission to the agent. A loan ends with the
 * session or the connection.
 */
export async function lentConnections(ctx: OperationContext, agentId: string, permission: Permission): Promise<PmConnection[]> {
  if (ctx.caller.kind !== 'user' || ctx.caller.type !== 'agent') return [];
  const loans = await ctx.em.find(
    AgentConnection,
    { agentSession: { agent: agentId, endedAt: null, expiresAt: { $gt: ctx.now } } },
    { populate: ['connection', 'agentSession'], orderBy: { createdAt: 'asc', id: 'asc' } },
  );
  if (!loans.length) return [];
  // Held anywhere: where the tool may act is the binding guard's to decide.
  const held = await ctx.resolver.resolveAnywhere(ctx.em, ctx.caller);
  const delegators = new Set((held?.grants.get(permission) ?? []).flatMap((source) => (source.kind === 'delegation' ? [source.delegatorId] : [])));
  return loans
    .filter((loan) => loan.agentSession.spawner && loan.connection.user.id === loan.agentSession.spawner.id && delegators.has(loan.agentSession.spawner.id))
    .map((loan) => loan.connection as PmConnection);
}

const matches = (connection: PmConnection, ref: string) => (isUuid(ref) ? connection.id === ref : connection.name === ref);

/**
 * The connection a PM tool uses: the one named, or the caller's default (or only) one. An agent
 * with none of its own uses what its spawner lent its session (never a delegator's: credentials
 * are not shared between people).
 */
export async function chooseConnection(ctx: OperationContext, ref: string | undefined, permission: Permission): Promise<PmConnection> {
  const me = requireUser(ctx);
  if (ref) {
    const own = await ctx.em.findOne(PmConnection, isUuid(ref) ? { id: ref, user: me } : { name: ref, user: me });
    const found = own ?? (await lentConnections(ctx, me, permission)).find((connection) => matches(connection, ref));
    if (!found) throw new OpError('not_found', `you have no PM connection "${ref}" (list_pm_connections shows yours)`, { field: 'connection' });
    return found;
  }
  const mine = await ctx.em.find(PmConnection, { user: me }, { orderBy: { isDefault: 'desc', createdAt: 'asc' }, limit: 2 });
  if (!mine.length) return chooseLent(ctx, me, permission);
  if (mine[0]!.isDefault || mine.length === 1) return mine[0]!;
  throw new OpError('invalid_input', 'you have several PM connections and none is the default; pass connection (its id or name) or set one with set_default_pm_connection', { field: 'connection' });
}

async function chooseLent(ctx: OperationContext, me: string, permission: Permission): Promise<PmConnection> {
  const lent = await lentConnections(ctx, me, permission);
  if (lent.length === 1) return lent[0]!;
  const spawnersDefault = lent.find((connection) => connection.isDefault);
  if (spawnersDefault) return spawnersDefault;
  if (lent.length > 1) throw new OpError('invalid_input', `your session may use ${lent.length} of your spawner's connections; pass connection (its id or name; list_pm_connections shows them)`, { field: 'connection' });
  if (ctx.caller.kind === 'user' && ctx.caller.type === 'agent') {
    throw new OpError('connection_required', 'This agent session may use none of its spawner\'s tracker connections (or their loan ended with the session or the connection). Ask your spawner to start the session with pm_connections.');
  }
  throw new OpError('connection_required', `You have no PM connection yet. ${howToConnect(ctx)}`);
}

export function openCredentials(ctx: OperationContext, connection: PmConnection): Credentials {
  try {
    return JSON.parse(ctx.vault.open(connection.secret, connectionContext(connection.id))) as Credentials;
  } catch (error) {
    if (error instanceof OpError) throw error;
    throw new OpError('unavailable', `the credentials of connection "${connection.name}" cannot be opened with this deployment's vault keys; add the connection again`);
  }
}

export function credentialSecrets(credentials: Credentials): string[] {
  const secrets = [credentials.apiToken, credentials.token, credentials.apiKey, credentials.accessToken, credentials.refreshToken]
    .filter((s): s is string => typeof s === 'string' && s.length >= 4);
  // As sent in a Basic header: base64 of `email:apiToken` (Jira Cloud), `apikey:KEY` (OpenProject).
  if (credentials.email && credentials.apiToken) secrets.push(`${credentials.email}:${credentials.apiToken}`);
  if (credentials.apiKey) secrets.push(`apikey:${credentials.apiKey}`);
  return secrets;
}

/**
 * The tracker a connection reaches. An OAuth connection's access token is refreshed before each
 * request that would start with less than a minute left (one refresh however many ask).
 */
export function trackerOf(ctx: OperationContext, connection: PmConnection, credentials: Credentials): Tracker {
  if (connection.auth !== 'oauth') return ctx.pm.tracker(connection.provider, connection.baseUrl, credentials);
  const tokens = ctx.pm.oauthTokens;
  if (!tokens || !connection.cloudId) {
    throw new OpError('unavailable', `connection "${connection.name}" uses Jira Cloud OAuth, which this deployment no longer has configured (MANDATE_JIRA_OAUTH_CLIENT_ID); ask its administrators, or add the site with an API token`);
  }
  let live = { accessToken: credentials.accessToken ?? '', expiresAt: connection.expiresAt };
  const deps = { em: ctx.em, vault: ctx.vault, now: ctx.now, context: connectionContext(connection.id) };
  return ctx.pm.jiraOAuthTracker(connection.baseUrl, connection.cloudId, async () => {
    if (needsRefresh(live.expiresAt, ctx.now)) live = await tokens.refresh(deps, connection.id);
    return live.accessToken;
  });
}

export interface NewConnection {
  provider: PmProvider;
  name: string;
  baseUrl: string;
  auth: PmConnection['auth'];
  credentials: Credentials;
  account: { id: string; name: string };
  cloudId?: string;
  scopes?: string[];
  expiresAt?: Date;
}

/**
 * Stores a verified connection for the user, sealed under its own id. The user's first connection,
 * or one asked to be, becomes the default (one default per user, in one transaction).
 */
export async function storeConnection(ctx: OperationContext, userId: string, fields: NewConnection, wantDefault: boolean): Promise<PmConnection> {
  const id = randomUUID();
  return ctx.em.transactional(async (tx) => {
    const others = await tx.count(PmConnection, { user: userId });
    const makeDefault = wantDefault || others === 0;
    if (makeDefault) await tx.nativeUpdate(PmConnection, { user: userId, isDefault: true }, { isDefault: false });
    const row = tx.create(PmConnection, {
      id,
      user: userId,
      provider: fields.provider,
      name: fields.name,
      baseUrl: fields.baseUrl,
      auth: fields.auth,
      secret: ctx.vault.seal(JSON.stringify(fields.credentials), connectionContext(id)),
      cloudId: fields.cloudId ?? null,
      accountId: fields.account.id.slice(0, 200),
      accountName: fields.account.name.slice(0, 200),
      status: 'connected',
      verifiedAt: ctx.now,
      scopes: fields.scopes ?? [],
      expiresAt: fields.expiresAt ?? null,
      isDefault: makeDefault,
    });
    await tx.flush();
    return row;
  });
}

/** Makes a connection the user's default (the one default per user moves, in one transaction). */
export async function makeDefaultConnection(em: Em, userId: string, connectionId: string): Promise<void> {
  await em.transactional(async (tx) => {
    await tx.nativeUpdate(PmConnection, { user: userId, isDefault: true, id: { $ne: connectionId } }, { isDefault: false });
    await tx.nativeUpdate(PmConnection, { id: connectionId }, { isDefault: true });
  });
}

/** Records what the tracker said about a connection, outside any operation transaction. */
export async function markConnection(em: Em, id: string, status: PmConnection['status'], reason: string | null): Promise<void> {
  await em.fork().nativeUpdate(PmConnection, { id }, { status, statusReason: reason, updatedAt: new Date() });
}

/**
 * Runs `use` with a tracker for the caller's connection. A tracker failure becomes a clear tool
 * error (never quoting the credentials); a 401 marks the connection invalid, so the next call
 * says so without asking the tracker again.
 */
export async function withTracker<T>(ctx: OperationContext, ref: string | undefined, permission: Permission, use: (tracker: Tracker, connection: PmConnection) => Promise<T>): Promise<T> {
  const connection = await chooseConnection(ctx, ref, permission);
  const label = `${PROVIDER_LABEL[connection.provider]} (connection "${connection.name}")`;
  if (connection.status === 'invalid') {
    throw new OpError('connection_invalid', `${label} was rejected by the tracker (${connection.statusReason ?? 'credentials refused'}). ${connection.auth === 'oauth' ? reconnect(ctx, connection) : 'Add it again with fresh credentials, or run test_pm_connection once fixed upstream.'}`);
  }
  if (connection.status === 'expired') throw expiredError(ctx, connection, label, connection.statusReason);
  const credentials = openCredentials(ctx, connection);
  try {
    // A tracker may quote the request's credentials back (in any encoding): never shown onward.
    return scrubValue(await use(trackerOf(ctx, connection, credentials), connection), credentialSecrets(credentials));
  } catch (error) {
    if (error instanceof TrackerError && error.status === 401) {
      await markConnection(ctx.em, connection.id, 'invalid', `${PROVIDER_LABEL[connection.provider]} answered 401 at ${ctx.now.toISOString()}`);
    }
    throw connectionFailure(ctx, connection, label, error, credentials);
  }
}

/** The tool error for a failed tracker call (credentials never quoted); unknown errors pass through. */
function connectionFailure(ctx: OperationContext, connection: PmConnection, label: string, error: unknown, credentials: Credentials): unknown {
  if (error instanceof GrantExpired) return expiredError(ctx, connection, label, error.message);
  return trackerFailure(error, label, credentialSecrets(credentials)) ?? error;
}

function expiredError(ctx: OperationContext, connection: PmConnection, label: string, reason: string | null | undefined): OpError {
  return new OpError('connection_invalid', `${label} has expired (${reason ?? 'the authorization ended'}). ${reconnect(ctx, connection)}`);
}

/** Every provider with the caller's connections to it, or `not_connected`. */
export function providerSummary(connections: PmConnection[], connectUrl: (provider: PmProvider) => string | null) {
  return PM_PROVIDERS.map((provider: PmProvider) => {
    const mine = connections.filter((c) => c.provider === provider);
    const best = mine.find((c) => c.status === 'connected') ?? mine[0];
    const browser = connectUrl(provider);
    return { provider, label: PROVIDER_LABEL[provider], status: best ? best.status : 'not_connected', connections: mine.length, ...(browser ? { connect_url: browser } : {}) };
  });
}

