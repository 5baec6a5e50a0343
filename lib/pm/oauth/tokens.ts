import { LockMode } from '@mikro-orm/core';
import { OpError } from '../../errors.ts';
import { PmConnection } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import type { Vault } from '../../vault.ts';
import { GrantRefused, type AtlassianOAuth } from './atlassian.ts';
import { UpstreamFailure } from '../http.ts';

// Access tokens of OAuth connections, refreshed before they expire. Refresh tokens rotate (each is
// good for one refresh), so two refreshes of one connection must never run at once: in a process,
// callers share the refresh in flight; across processes on PostgreSQL, the connection's row is
// locked for the refresh and whoever comes second finds the fresh token. (PGlite is one process.)

/** What an OAuth connection's sealed secret holds. */
export interface OAuthSecret {
  accessToken: string;
  refreshToken?: string;
}

/** Tokens this close to expiry are refreshed first, so a call never starts with a dying token. */
export const REFRESH_MARGIN_MS = 60_000;

export interface LiveToken {
  accessToken: string;
  expiresAt: Date;
}

export interface RefreshDeps {
  em: Em;
  vault: Vault;
  now: Date;
  /** The vault context of the connection's secret. */
  context: string;
}

/** The connection can no longer be refreshed: the user has to connect again. */
export class GrantExpired extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'GrantExpired';
  }
}

export const needsRefresh = (expiresAt: Date | null | undefined, now: Date) => !expiresAt || expiresAt.getTime() - REFRESH_MARGIN_MS <= now.getTime();

export class OAuthTokens {
  private readonly oauth: AtlassianOAuth;
  private readonly lockRows: boolean;
  private readonly inflight = new Map<string, Promise<LiveToken>>();

  constructor(oauth: AtlassianOAuth, options: { lockRows: boolean }) {
    this.oauth = oauth;
    this.lockRows = options.lockRows;
  }

  /** A fresh access token for the connection; concurrent callers share one refresh. */
  refresh(deps: RefreshDeps, connectionId: string): Promise<LiveToken> {
    let running = this.inflight.get(connectionId);
    if (!running) {
      running = this.refreshRow(deps, connectionId).finally(() => this.inflight.delete(connectionId));
      this.inflight.set(connectionId, running);
    }
    return running;
  }

  private async refreshRow(deps: RefreshDeps, id: string): Promise<LiveToken> {
    const em = deps.em.fork();
    const outcome = this.lockRows ? await em.transactional((tx) => this.refreshLocked(tx, deps, id)) : await this.refreshLocked(em, deps, id);
    if ('expired' in outcome) throw new GrantExpired(outcome.expired);
    return outcome;
  }

  /** Under the row lock (PostgreSQL): re-read, and refresh only if nobody else just did. */
  private async refreshLocked(em: Em, deps: RefreshDeps, id: string): Promise<LiveToken | { expired: string }> {
    const row = await em.findOne(PmConnection, { id }, this.lockRows ? { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true } : { refresh: true });
    if (!row) throw new OpError('not_found', 'the connection was removed meanwhile');
    const secret = JSON.parse(deps.vault.open(row.secret, deps.context)) as OAuthSecret;
    if (row.status === 'connected' && !needsRefresh(row.expiresAt, deps.now)) return { accessToken: secret.accessToken, expiresAt: row.expiresAt! };
    if (row.status === 'expired') return { expired: row.statusReason ?? 'the authorization has expired' };
    let expired: string | null = null;
    if (!secret.refreshToken) {
      expired = 'the access token expired and the grant has no refresh token (offline_access was not granted)';
    } else {
      try {
        const grant = await this.oauth.refresh(secret.refreshToken, deps.now);
        const next: OAuthSecret = { accessToken: grant.accessToken, refreshToken: grant.refreshToken ?? secret.refreshToken };
        row.secret = deps.vault.seal(JSON.stringify(next), deps.context);
        row.expiresAt = grant.expiresAt;
        row.scopes = grant.scopes;
        row.status = 'connected';
        row.statusReason = null;
        await em.flush();
        return { accessToken: grant.accessToken, expiresAt: grant.expiresAt };
      } catch (error) {
        if (!(error instanceof GrantRefused)) throw error;
        // The server failing is not the grant ending: the connection stays as it is.
        if (error.status >= 500) throw new UpstreamFailure('network', `Atlassian's authorization server failed (${error.reason})`);
        expired = `Atlassian refused to refresh the authorization (${error.reason}) at ${deps.now.toISOString()}`;
      }
    }
    // Recorded (and committed) before the caller is told, so the next call says so at once.
    row.status = 'expired';
    row.statusReason = expired.slice(0, 500);
    await em.flush();
    return { expired };
  }
}
