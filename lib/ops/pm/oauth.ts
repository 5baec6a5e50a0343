import { z } from 'zod';
import { connectionOutput } from '../outputs.ts';
import { PmConnection, PM_PROVIDERS } from '../../db/entities/index.ts';
import { invalid, OpError } from '../../errors.ts';
import { operation, type OperationContext } from '../operation.ts';
import { connectionContext, connectionView, makeDefaultConnection, requireUser, storeConnection } from './connection-use.ts';
import { trackerFailure } from '../../pm/errors.ts';
import { GrantRefused, type AccessibleSite, type TokenGrant } from '../../pm/oauth/atlassian.ts';
import { redirectUri, startAuthorization, takeAuthorization, type PendingAuthorization } from './oauth-states.ts';

// Jira Cloud OAuth 2.0 (3LO) in a browser: connect answers 302 to Atlassian's consent screen, and
// Atlassian sends the browser back to callback, which stores the grant for the user who started it.
// Both need the user's own Mandate credentials (a browser asks for them: HTTP Basic), and the
// callback is refused unless the state was started by that same user.

export const RESULT_PAGE = '/pm/oauth/result';

const providerField = z.enum(PM_PROVIDERS).describe('the tracker; OAuth is offered for jira_cloud');

function requireOAuth(ctx: OperationContext, provider: string) {
  if (provider !== 'jira_cloud') throw invalid('provider', `OAuth connect is offered for jira_cloud only; add a ${provider} connection with add_pm_connection (POST /api/v1/user/credentials)`);
  const oauth = ctx.pm.jiraOAuth;
  if (!oauth) {
    throw new OpError('unavailable', 'this deployment has no Jira Cloud OAuth app configured (MANDATE_JIRA_OAUTH_CLIENT_ID and _SECRET); connect with your email and an API token instead (add_pm_connection)');
  }
  return oauth;
}

export const connectPmOauth = operation({
  name: 'connect_pm_oauth',
  servers: ['pm'],
  toolset: 'connections',
  route: { method: 'GET', path: '/api/v1/user/credentials/{provider}/connect', redirect: (out: { authorize_url: string }) => out.authorize_url },
  title: 'Connect Jira Cloud with OAuth',
  description:
    'Starts connecting your Atlassian account to Jira Cloud with OAuth (no API token needed). Returns authorize_url: open it in a browser within 10 minutes, ' +
    'approve access, and Atlassian sends you back to Mandate, which asks for your Mandate login and stores the connection for you. ' +
    'site picks one site when your account has several (e.g. acme.atlassian.net); name and default as for add_pm_connection. Over HTTP, GET answers 302 to the consent screen.',
  input: z.strictObject({
    provider: providerField,
    site: z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters').optional(),
    name: z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters').regex(/^[\w .@-]+$/, 'may hold letters, digits, spaces and . _ @ -').optional(),
    default: z.boolean().optional(),
  }),
  output: z.strictObject({ authorize_url: z.string(), expires_at: z.string() }),
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'write',
  annotations: {},
  async run(ctx, input) {
    requireOAuth(ctx, input.provider);
    const me = requireUser(ctx);
    // Checked now, not after the user has been to Atlassian and back.
    if (input.name && (await ctx.em.count(PmConnection, { user: me, name: input.name }))) throw new OpError('conflict', `you already have a connection named "${input.name}"`, { field: 'name' });
    const started = await startAuthorization(ctx, me, input.provider, { site: input.site, name: input.name, makeDefault: input.default === true });
    return { authorize_url: started.authorizeUrl, expires_at: started.expiresAt.toISOString() };
  },
});

/** The site the user asked for among those the grant reaches, or the first one. */
function chooseSite(sites: AccessibleSite[], wanted: string | null): AccessibleSite {
  if (!sites.length) throw invalid('code', 'the authorization gives access to no Jira site; approve access to a site and connect again');
  if (!wanted) return sites[0]!;
  const want = wanted.toLowerCase().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  const found = sites.find((site) => site.cloudId === wanted || new URL(site.url).host.toLowerCase() === want || site.name.toLowerCase() === want);
  if (!found) throw invalid('site', `the authorization covers ${sites.map((site) => new URL(site.url).host).join(', ')}, not ${wanted}; nothing was stored`);
  return found;
}

/** A name for the new connection that the user has not used yet. */
async function freeName(ctx: OperationContext, userId: string, wanted: string | null, host: string): Promise<string> {
  if (wanted) return wanted;
  const taken = new Set((await ctx.em.find(PmConnection, { user: userId }, { fields: ['name'] })).map((c) => c.name));
  const base = `jira_cloud:${host}`.slice(0, 56);
  for (const name of [base, `${base} oauth`, ...Array.from({ length: 8 }, (_, i) => `${base} oauth ${i + 2}`)]) if (!taken.has(name)) return name;
  throw invalid('name', 'choose a name for this connection (connect with ?name=...)');
}

/** Stores the grant for the user who started it: a reconnect of the same site updates that connection. */
async function saveGrant(ctx: OperationContext, pending: PendingAuthorization, grant: TokenGrant, site: AccessibleSite, account: { id: string; name: string }) {
  const credentials = { accessToken: grant.accessToken, ...(grant.refreshToken ? { refreshToken: grant.refreshToken } : {}) };
  const existing = await ctx.em.findOne(PmConnection, { user: pending.userId, provider: 'jira_cloud', auth: 'oauth', cloudId: site.cloudId });
  if (!existing) {
    const name = await freeName(ctx, pending.userId, pending.connectionName, new URL(site.url).host);
    return storeConnection(ctx, pending.userId, {
      provider: 'jira_cloud', name, baseUrl: site.url, auth: 'oauth', credentials, account, cloudId: site.cloudId, scopes: grant.scopes, expiresAt: grant.expiresAt,
    }, pending.makeDefault);
  }
  Object.assign(existing, {
    secret: ctx.vault.seal(JSON.stringify(credentials), connectionContext(existing.id)),
    baseUrl: site.url,
    status: 'connected',
    statusReason: null,
    verifiedAt: ctx.now,
    accountId: account.id.slice(0, 200),
    accountName: account.name.slice(0, 200),
    scopes: grant.scopes,
    expiresAt: grant.expiresAt,
  });
  await ctx.em.flush();
  if (pending.makeDefault && !existing.isDefault) {
    await makeDefaultConnection(ctx.em, pending.userId, existing.id);
    existing.isDefault = true;
  }
  return existing;
}

const queryText = (max: number) => z.string().max(max, `must be at most ${max} characters`);

export const completePmOauth = operation({
  name: 'complete_pm_oauth',
  servers: [],
  toolset: 'connections',
  route: {
    method: 'GET',
    path: '/api/v1/user/credentials/{provider}/callback',
    redirect: (out: { outcome: string }) => `${RESULT_PAGE}?outcome=${out.outcome}`,
  },
  title: 'Finish a Jira Cloud OAuth connection',
  description:
    'Where Atlassian sends the browser back after consent (the OAuth redirect URI). Checks that the state was started by you and is unused and recent, exchanges the code ' +
    '(with the PKCE verifier), finds the site, stores the connection for you, and answers 302 to a result page. A denied consent stores nothing.',
  // Atlassian's redirect carries its own parameters; unknown ones are ignored rather than refused.
  input: z.object({
    provider: providerField,
    state: queryText(200).min(1, 'must not be empty'),
    code: queryText(2000).min(1, 'must not be empty').optional(),
    error: queryText(200).optional(),
    error_description: queryText(1000).optional(),
  }),
  secretInputs: ['code', 'state'],
  output: z.discriminatedUnion('outcome', [z.strictObject({ outcome: z.literal('connected'), connection: connectionOutput, other_sites: z.array(z.string()) }), z.strictObject({ outcome: z.enum(['denied', 'failed']), reason: z.string() })]),
  permission: 'pm:read',
  // About the caller's own connection records, not a tracker project: a grant in any project admits it.
  permissionScope: 'anywhere',
  effect: 'upstream-write',
  annotations: {},
  async run(ctx, input) {
    const oauth = requireOAuth(ctx, input.provider);
    const me = requireUser(ctx);
    const pending = await takeAuthorization(ctx, input.state);
    if (pending.userId !== me) {
      throw new OpError('forbidden', 'this authorization was started by another Mandate user; nothing was stored, and it cannot be used any more. Start your own from the connect URL', { field: 'state' });
    }
    if (pending.provider !== input.provider) throw invalid('provider', `this authorization was started for ${pending.provider}`);
    // Nothing is stored either way; the page says whether the user declined or Atlassian failed.
    if (input.error) return { outcome: input.error === 'access_denied' ? ('denied' as const) : ('failed' as const), reason: input.error.replace(/[^\w.-]/g, '').slice(0, 60) };
    if (!input.code) throw invalid('code', 'is required (the authorization server sends it with the state)');
    try {
      const grant = await oauth.exchangeCode(input.code, pending.verifier, redirectUri(ctx, input.provider), ctx.now);
      const sites = await oauth.accessibleSites(grant.accessToken);
      const site = chooseSite(sites, pending.site);
      const account = await ctx.pm.jiraOAuthTracker(site.url, site.cloudId, async () => grant.accessToken).whoami();
      const connection = await saveGrant(ctx, pending, grant, site, account);
      ctx.setTarget(`pm_connection:${connection.id}`);
      return {
        outcome: 'connected' as const,
        connection: connectionView(connection),
        other_sites: sites.filter((other) => other !== site).map((other) => other.url),
      };
    } catch (error) {
      if (error instanceof GrantRefused) {
        if (error.status >= 500) throw new OpError('upstream_failed', `Atlassian's authorization server failed (${error.reason}); connect again later`);
        throw invalid('code', `Atlassian refused the authorization (${error.reason}); nothing was stored. Connect again`);
      }
      throw trackerFailure(error, 'Jira Cloud', [input.code]) ?? error;
    }
  },
});
