import { createHash } from 'node:crypto';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Orm } from '../db/orm.ts';
import { OpError } from '../errors.ts';

export const FAILURES_ALLOWED = 5;
export const FAILURE_WINDOW_SECONDS = 60;

/**
 * rate-limiter-flexible's Postgres store needs `query({text, values})` returning `{rows}`. This
 * adapter runs it through MikroORM, so the same store works on PostgreSQL and on the embedded
 * PGlite, and every instance on one PostgreSQL shares the counts.
 */
export function storeClient(orm: Orm) {
  return {
    async query(q: { text: string; values?: unknown[] }) {
      const params: unknown[] = [];
      const sql = q.text.replace(/\$(\d+)/g, (_m, n: string) => {
        params.push(q.values?.[Number(n) - 1]);
        return '?';
      });
      const rows = await orm.em.fork().execute(sql, params);
      return { rows, rowCount: rows.length };
    },
  };
}

const hash = (value: string) => createHash('sha256').update(value).digest('hex').slice(0, 40);

/**
 * Failed password logins: at most 5 per 60 s per IP, per IP + email and per email, so rotating
 * IPs cannot brute-force one account. Each attempt takes its point from all three counts *before*
 * the password is verified (one atomic upsert each, shared by every instance on the database), so
 * concurrent attempts cannot all slip past a check made before any of them failed; a successful
 * login gives its points back. A refused attempt is never verified. Emails are stored hashed.
 */
export class LoginLimiter {
  private readonly limiters: { name: string; limiter: RateLimiterPostgres; key: (ip: string, email: string) => string }[];

  constructor(orm: Orm) {
    const make = (keyPrefix: string) =>
      new RateLimiterPostgres({
        storeClient: storeClient(orm),
        storeType: 'pool',
        tableName: 'login_limit',
        tableCreated: true,
        clearExpiredByTimeout: false,
        keyPrefix,
        points: FAILURES_ALLOWED,
        duration: FAILURE_WINDOW_SECONDS,
      });
    this.limiters = [
      { name: 'ip', limiter: make('ip'), key: (ip) => ip },
      { name: 'ip+email', limiter: make('ipemail'), key: (ip, email) => `${ip}|${hash(email)}` },
      { name: 'email', limiter: make('email'), key: (_ip, email) => hash(email) },
    ];
  }

  /**
   * Takes one attempt from each count; 429 when any is used up (nothing is verified then). The
   * caller verifies, then calls `refund` unless the credentials themselves were wrong.
   */
  async take(ip: string, email: string): Promise<{ refund(): Promise<void> }> {
    const normalised = email.trim().toLowerCase();
    const keys = this.limiters.map(({ limiter, key }) => ({ limiter, key: key(ip, normalised) }));
    const taken = await Promise.allSettled(keys.map(({ limiter, key }) => limiter.consume(key, 1)));
    const refund = async () => {
      await Promise.all(keys.map(({ limiter, key }, i) => (taken[i]!.status === 'fulfilled' ? limiter.reward(key, 1) : undefined)));
    };
    const blocked = taken.flatMap((outcome) => (outcome.status === 'rejected' && outcome.reason instanceof RateLimiterRes ? [outcome.reason] : []));
    const broken = taken.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected' && !(outcome.reason instanceof RateLimiterRes));
    if (broken) {
      await refund().catch(() => undefined);
      throw broken.reason;
    }
    if (blocked.length > 0) {
      const wait = Math.max(...blocked.map((state) => state.msBeforeNext));
      throw new OpError('rate_limited', 'too many failed logins; try again later', { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) });
    }
    return { refund };
  }
}
