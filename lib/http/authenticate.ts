import { createHash, hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { OpError } from '../errors.ts';
import { authenticatePassword, verifyToken } from '../identity/authenticate.ts';
import { emOf, lazyFork, type EmSource } from '../db/orm.ts';
import type { UserCaller } from '../identity/caller.ts';
import { EpochCache } from '../access/epoch.ts';
import type { Speculation } from '../access/speculation.ts';
import type { Runtime } from '../runtime.ts';
import { LoginLimiter } from '../identity/login-limiter.ts';

const VERIFIED_TTL_MS = 5 * 60_000;
const TOKEN_TTL_MS = 60_000;

export interface HttpAuthOptions {
  /** API token used for requests that carry no credentials at all. */
  serviceToken?: string | undefined;
  /** Shared secret every request must carry in X-MCP-Token. */
  guardToken?: string | undefined;
  /** Take the client address from X-Forwarded-For. */
  trustProxy?: boolean | undefined;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export type Credentials = { kind: 'bearer'; token: string } | { kind: 'basic'; email: string; password: string };

/** The credentials in an Authorization header; a 401 for a malformed one, null when there is none. */
export function parseAuthorization(header: string | undefined): Credentials | null {
  if (!header) return null;
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
 * minute; the verified result is then reused while the access epoch stands still (any change to
 * the user — password, deactivation — or a token revocation moves it, on every instance), for at
 * most five minutes (a token: one, and never past its expiry). Cache keys are hashes, never the
 * secrets themselves.
 */
export class HttpAuthenticator {
  private readonly runtime: Runtime;
  private readonly options: HttpAuthOptions;
  private readonly verified: EpochCache<UserCaller>;
  private readonly limiter: LoginLimiter;
  private readonly guardDigest: Buffer | undefined;

  constructor(runtime: Runtime, options: HttpAuthOptions = {}) {
    this.runtime = runtime;
    this.options = options;
    this.verified = new EpochCache(runtime.resolver.epoch);
    this.limiter = new LoginLimiter(runtime.db.orm);
    this.guardDigest = options.guardToken ? digest(options.guardToken) : undefined;
  }

  /** The address failed logins are counted against. */
  clientAddress(req: IncomingMessage): string {
    const forwarded = this.options.trustProxy ? req.headers['x-forwarded-for'] : undefined;
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    return first || req.socket.remoteAddress || 'unknown';
  }

  /**
   * `arrived`: performance.now() when the request came in (see AccessEpoch.sync). `em`: the
   * request's entity manager, when it has one; used only when a credential is not cached.
   * `speculation`: trust the cached credentials as they stand (see Speculation); one that is not
   * cached is verified only once the epoch read has vouched for the request, so a redone request
   * never counts a failed login twice.
   */
  async authenticate(
    req: IncomingMessage,
    arrived: number = performance.now(),
    em: EmSource = lazyFork(this.runtime.db.orm),
    speculation?: Speculation,
  ): Promise<UserCaller> {
    const notBefore = speculation?.notBefore ?? arrived;
    if (this.guardDigest) {
      const given = req.headers['x-mcp-token'];
      // Compared as digests, so the comparison takes the same time whatever the length.
      if (typeof given !== 'string' || !timingSafeEqual(digest(given), this.guardDigest)) {
        throw new OpError('unauthenticated', 'missing or wrong X-MCP-Token header');
      }
    }
    const credentials = parseAuthorization(req.headers.authorization);
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
        const ip = this.clientAddress(req);
        await this.limiter.check(ip, credentials.email);
        try {
          const value = await authenticatePassword(emOf(em), credentials.email, credentials.password);
          return { value, validUntil: new Date(now.getTime() + VERIFIED_TTL_MS) };
        } catch (error) {
          if (error instanceof OpError && error.code === 'unauthenticated') await this.limiter.failed(ip, credentials.email);
          throw error;
        }
      },
      notBefore,
    );
    return caller!;
  }

  // A token is looked up once a minute at most (which also keeps its last-used time), and not
  // past its expiry; a revocation moves the access epoch and drops it at once.
  private async bearer(em: EmSource, token: string, notBefore: number, speculation: Speculation | undefined): Promise<UserCaller> {
    // One-shot hash: a Hash object per request showed in the server's profile.
    const key = hash('sha256', `bearer\0${token}`);
    const now = new Date();
    const caller = await this.verified.getOrLoad(
      em,
      key,
      now,
      async () => {
        await speculation?.settle();
        const { caller: value, expiresAt } = await verifyToken(emOf(em), token, now);
        const ttl = new Date(now.getTime() + TOKEN_TTL_MS);
        return { value, validUntil: expiresAt && expiresAt < ttl ? expiresAt : ttl };
      },
      notBefore,
    );
    return caller!;
  }
}
