import { randomUUID } from 'node:crypto';
import { OpError } from '../../errors.ts';
import { PmOauthState, type PmProvider } from '../../db/entities/index.ts';
import type { OperationContext } from '../operation.ts';
import { hashState, newState, pkcePair } from '../../pm/oauth/atlassian.ts';

// Authorizations in progress. The state handed to the browser is 256 random bits; only its hash is
// stored, with the user who started it and the sealed PKCE verifier. It is good for one callback
// within ten minutes, and taking it deletes it whether or not the rest of the callback succeeds.

export const STATE_TTL_MS = 10 * 60_000;
/** Unfinished authorizations one user may have at once (each is a row until it expires). */
const MAX_PENDING = 20;

const stateContext = (id: string) => `pm_oauth_state:${id}`;

export interface StartedAuthorization {
  authorizeUrl: string;
  expiresAt: Date;
}

export interface PendingAuthorization {
  userId: string;
  provider: PmProvider;
  verifier: string;
  site: string | null;
  connectionName: string | null;
  makeDefault: boolean;
}

export function redirectUri(ctx: OperationContext, provider: PmProvider): string {
  return `${ctx.pm.settings.publicUrl}/api/v1/user/credentials/${provider}/callback`;
}

export async function startAuthorization(
  ctx: OperationContext,
  userId: string,
  provider: PmProvider,
  wants: { site?: string; name?: string; makeDefault: boolean },
): Promise<StartedAuthorization> {
  const oauth = ctx.pm.jiraOAuth!;
  await ctx.em.nativeDelete(PmOauthState, { expiresAt: { $lte: ctx.now } });
  if ((await ctx.em.count(PmOauthState, { user: userId })) >= MAX_PENDING) {
    throw new OpError('rate_limited', `you have ${MAX_PENDING} unfinished connects; finish one, or try again when they expire (10 minutes)`, { retryAfterSeconds: STATE_TTL_MS / 1000 });
  }
  const state = newState();
  const { verifier, challenge } = pkcePair();
  const expiresAt = new Date(ctx.now.getTime() + STATE_TTL_MS);
  const id = randomUUID();
  const row = ctx.em.create(PmOauthState, {
    id,
    stateHash: hashState(state),
    user: userId,
    provider,
    verifier: ctx.vault.seal(verifier, stateContext(id)),
    site: wants.site ?? null,
    connectionName: wants.name ?? null,
    makeDefault: wants.makeDefault,
    expiresAt,
  });
  await ctx.em.persist(row).flush();
  return { authorizeUrl: oauth.authorizeUrl({ state, challenge, redirectUri: redirectUri(ctx, provider) }), expiresAt };
}

/** Takes (deletes) the authorization a state names; unknown, used and expired states are refused alike. */
export async function takeAuthorization(ctx: OperationContext, state: string): Promise<PendingAuthorization> {
  const refused = () => new OpError('invalid_input', 'this authorization is unknown, already used or expired (it is good for one use within 10 minutes); start again from the connect URL', { field: 'state' });
  const row = await ctx.em.findOne(PmOauthState, { stateHash: hashState(state) }, { refresh: true });
  if (!row) throw refused();
  // Whoever deletes the row owns the callback: a replay racing the first use finds nothing.
  if ((await ctx.em.nativeDelete(PmOauthState, { id: row.id })) !== 1) throw refused();
  if (row.expiresAt.getTime() <= ctx.now.getTime()) throw refused();
  return {
    userId: row.user.id,
    provider: row.provider,
    verifier: ctx.vault.open(row.verifier, stateContext(row.id)),
    site: row.site ?? null,
    connectionName: row.connectionName ?? null,
    makeDefault: row.makeDefault,
  };
}
