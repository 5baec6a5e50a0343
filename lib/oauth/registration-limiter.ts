import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Orm } from '../db/orm.ts';
import { OpError } from '../errors.ts';
import { storeClient } from '../identity/login-limiter.ts';
import { ipv6Groups, normalise } from '../pm/net-guard.ts';

/**
 * Registrations are counted per IPv4 address and per IPv6 /64 (one host's usual allocation); an
 * IPv6 form carrying an IPv4 address counts as that address.
 */
export function limiterKey(address: string): string {
  const { address: ip, family } = normalise(address);
  if (family === 'ipv4') return ip;
  return `${ipv6Groups(ip).slice(0, 4).map((group) => group.toString(16)).join(':')}::/64`;
}

/**
 * New Dynamic Client Registrations per client address and hour, counted in the database (every
 * instance shares the count). A registration identical to one already made creates nothing and is
 * not counted: many users behind one address (claude.ai's) re-registering the same client pass.
 */
export class RegistrationLimiter {
  private readonly limiter: RateLimiterPostgres;

  constructor(orm: Orm, perHour: number) {
    this.limiter = new RateLimiterPostgres({
      storeClient: storeClient(orm),
      storeType: 'pool',
      tableName: 'login_limit',
      tableCreated: true,
      clearExpiredByTimeout: false,
      keyPrefix: 'dcr',
      points: perHour,
      duration: 3600,
    });
  }

  async take(address: string): Promise<void> {
    try {
      await this.limiter.consume(limiterKey(address), 1);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw new OpError('rate_limited', 'too many client registrations from this address; try again later', {
        retryAfterSeconds: Math.max(1, Math.ceil(error.msBeforeNext / 1000)),
      });
    }
  }
}
