import { createHash } from 'node:crypto';
import { RateLimiterPostgres, type RateLimiterRes } from 'rate-limiter-flexible';
import type { Orm } from '../db/orm.ts';
import { OpError } from '../errors.ts';

export const FAILURES_ALLOWED = 5;
export const FAILURE_WINDOW_SECONDS = 60;

/**
 * rate-limiter-flexible's Postgres store needs `query({text, values})` returning `{rows}`. This
 * adapter runs it through MikroORM, so the same store works on PostgreSQL and on the embedded
 * PGlite, and every instance on one PostgreSQL shares the counts.
 */
function storeClient(orm: Orm) {
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
 * IPs cannot brute-force one account. A blocked attempt is refused before its password is even
 * verified. Only real credential failures count. Emails are stored hashed.
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

  /** Refuses (429) when any of the three counts is used up. */
  async check(ip: string, email: string): Promise<void> {
    const normalised = email.trim().toLowerCase();
    const states = await Promise.all(this.limiters.map(({ limiter, key }) => limiter.get(key(ip, normalised))));
    const blocked = states.filter((state): state is RateLimiterRes => state !== null && state.consumedPoints >= FAILURES_ALLOWED);
    if (blocked.length > 0) {
      const wait = Math.max(...blocked.map((state) => state.msBeforeNext));
      throw new OpError('rate_limited', 'too many failed logins; try again later', { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) });
    }
  }

  async failed(ip: string, email: string): Promise<void> {
    const normalised = email.trim().toLowerCase();
    await Promise.all(this.limiters.map(({ limiter, key }) => limiter.penalty(key(ip, normalised), 1)));
  }
}
