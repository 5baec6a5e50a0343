import { createHash, hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { OpError } from '../errors.ts';
import { authenticatePassword, verifyToken } from '../identity/authenticate.ts';
import type { UserCaller } from '../identity/caller.ts';
import { AccessCache } from '../access/changes.ts';
import type { Speculation } from '../access/speculation.ts';
import type { Runtime } from '../runtime.ts';
import { LoginLimiter } from '../identity/login-limiter.ts';
import { looksLikeApiToken } from '../identity/tokens.ts';
import { clientAddress, type TrustProxy } from './client-address.ts';

const NO_PROXY: TrustProxy = { kind: 'none' };
/** A request's unit of work (the runtime's; the HTTP face never opens the database itself). */
export type Scope = ReturnType<Runtime['scope']>;

const VERIFIED_TTL_MS = 5 * 60_000;
const TOKEN_TTL_MS = 60_000;

export interface HttpAuthOptions {
  /** API token used for requests that carry no credentials at all. */
  serviceToken?: string | undefined;
  /** Shared secret every request must carry in X-MCP-Token. */
  guardToken?: string | undefined;
  /** Which proxies in front to trust with X-Forwarded-For. */
  trustProxy?: TrustProxy | undefined;
  /** Browser origins allowed besides the server's own. */
  allowedOrigins?: readonly string[] | undefined;
  /** The address or name `mandate serve` binds to: a Host naming it is this server's. */
  host?: string | undefined;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export type Credentials = { kind: 'bearer'; token: string } | { kind: 'basic'; email: string; password: string };

/** The credentials in an Authorization header; a 401 for a malformed one, null when there is none. */
export function parseAuthorization(header: string | undefined): Credentials | null {
  if (header === undefined) return null;
  const [scheme, ...rest] = header.trim().split(/\s+/);
  const value = rest.join(' ');
  if (/^bearer$/i.test(scheme ?? '') && value) return { kind: 'bearer', token: value };
  if (/^basic$/i.test(scheme ?? '') && value) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // The password may itself contain ':' — only the first one separates it from the email.
    if (colon > 0) return { kind: 'basic', email: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw new OpError('unauthenticated', 'the Authorization header must be "Bearer <API token>" or "Basic base64(email:password)"');
}

/**
 * Authenticates HTTP requests. A password pays its argon2 verify once, a token its lookup once a
 * minute; the verified result is then reused until an access change of its user (any change to
 * the user — password, deactivation — or a token revocation, on every instance), for at
 * most five minutes (a token: one, and never past its expiry). Cache keys are hashes, never the
 * secrets themselves.
 */
export class HttpAuthenticator {
  private readonly runtime: Runtime;
  private readonly options: HttpAuthOptions;
  private readonly verified: AccessCache<UserCaller>;
  private readonly limiter: LoginLimiter;
  private readonly guardDigest: Buffer | undefined;
  private readonly verifying = new Map<string, { started: number; done: Promise<unknown> }>();

  constructor(runtime: Runtime, options: HttpAuthOptions = {}) {
    this.runtime = runtime;
    this.options = options;
    this.verified = new AccessCache(runtime.resolver.changes);
    this.limiter = new LoginLimiter(runtime.db.orm);
    this.guardDigest = options.guardToken ? digest(options.guardToken) : undefined;
  }

  /** The address failed logins are counted against. */
  clientAddress(req: IncomingMessage): string {
    return clientAddress(req, this.options.trustProxy ?? NO_PROXY);
  }

  /**
   * `arrived`: performance.now() when the request came in (see AccessChanges.sync). `em`: the
   * request's entity manager, when it has one; used only when a credential is not cached.
   * `speculation`: trust the cached credentials as they stand (see Speculation); one that is not
   * cached is verified only once the feed read has vouched for the request, so a redone request
   * never counts a failed login twice.
   */
  async authenticate(
    req: IncomingMessage,
    arrived: number = performance.now(),
    em: Scope = this.runtime.scope(),
    speculation?: Speculation,
    resource: string | null = null,
  ): Promise<UserCaller> {
    const caller = await this.identify(req, arrived, em, speculation);
    // Everything cached that this request goes on to use is the caller's (see Speculation).
    speculation?.touch(caller.userId);
    // RFC 8707: an OAuth access token is good at the one resource it was issued for, nowhere else
    // (the REST API is none: it takes Mandate tokens and passwords).
    if (caller.resource !== undefined && caller.resource !== resource) {
      throw new OpError('unauthenticated', resource ? `this access token was issued for ${caller.resource}, not ${resource}: request one for this endpoint` : 'an OAuth access token is only good at the MCP endpoint it was issued for; the REST API takes Mandate API tokens');
    }
    return caller;
  }

  private async identify(req: IncomingMessage, arrived: number, em: Scope, speculation: Speculation | undefined): Promise<UserCaller> {
    const notBefore = speculation?.notBefore ?? arrived;
    if (this.guardDigest) {
      const given = req.headers['x-mcp-token'];
      // Compared as digests, so the comparison takes the same time whatever the length.
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), this.guardDigest)) {
        throw new OpError('unauthenticated', 'missing or wrong X-MCP-Token header');
      }
    }
    const credentials = parseAuthorization(req.headers.authorization);
    // The service account answers only a request with no Authorization header at all: an empty
    // or blank one is a malformed credential (parseAuthorization refused it above).
    if (!credentials) {
      if (this.options.serviceToken) return this.bearer(em, this.options.serviceToken, notBefore, speculation);
      throw new OpError('unauthenticated', 'authentication required: send an API token (Bearer) or email and password (Basic)');
    }
    if (credentials.kind === 'bearer') return this.bearer(em, credentials.token, notBefore, speculation);
    const key = hash('sha256', `basic\0${credentials.email.trim().toLowerCase()}\0${credentials.password}`);
    const now = new Date();
    const caller = await this.verified.getOrLoad(
      em,
      key,
      now,
      async () => {
        await speculation?.settle();
        return this.verifyOnce(key, notBefore, async () => {
          // A request that joins this verify stores its result no newer than this: a change seen
          // by the joiner's own sync may have been committed after this verify read the user.
          const stamp = this.runtime.resolver.changes.stamp;
          const attempt = await this.limiter.take(this.clientAddress(req), credentials.email);
          try {
            const value = await authenticatePassword(em, credentials.email, credentials.password);
            await attempt.refund();
            return { value, subject: value.userId, validUntil: new Date(now.getTime() + VERIFIED_TTL_MS), stamp };
          } catch (error) {
            // Only wrong credentials keep their point; a failure of ours gives it back.
            if (!(error instanceof OpError && error.code === 'unauthenticated')) await attempt.refund().catch(() => undefined);
            throw error;
          }
        });
      },
      notBefore,
      speculation,
    );
    return caller!;
  }

  /**
   * One verify for identical credentials arriving together (a client's first burst of requests),
   * so they spend one limiter point, not one each. A request joins only a verify that began after
   * it arrived: it then sees every change committed before it.
   */
  private verifyOnce<T>(key: string, notBefore: number, verify: () => Promise<T>): Promise<T> {
    const pending = this.verifying.get(key);
    if (pending && pending.started >= notBefore) return pending.done as Promise<T>;
    const done = verify();
    const entry = { started: performance.now(), done };
    this.verifying.set(key, entry);
    void done.finally(() => {
      if (this.verifying.get(key) === entry) this.verifying.delete(key);
    }).catch(() => undefined);
    return done;
  }

  // A token is looked up once a minute at most (which also keeps its last-used time), and not
  // past its expiry; a revocation is an access change of its user and drops it at once.
  private async bearer(em: Scope, token: string, notBefore: number, speculation: Speculation | undefined): Promise<UserCaller> {
    // One-shot hash: a Hash object per request showed in the server's profile.
    const key = hash('sha256', `bearer\0${token}`);
    const now = new Date();
    const caller = await this.verified.getOrLoad(
      em,
      key,
      now,
      async () => {
        await speculation?.settle();
        // Not a Mandate API token: an OAuth access token, when this server issues them.
        const oauth = !looksLikeApiToken(token) ? this.runtime.oauth : null;
        const { caller: value, expiresAt } = oauth ? await oauth.verifyAccessToken(em, token, now) : await verifyToken(em, token, now);
        const ttl = new Date(now.getTime() + TOKEN_TTL_MS);
        return { value, subject: value.userId, validUntil: expiresAt && expiresAt < ttl ? expiresAt : ttl };
      },
      notBefore,
      speculation,
    );
    return caller!;
  }
}
