import { emOf, type EmSource } from '../db/orm.ts';
import { OpError } from '../errors.ts';
import type { UserCaller } from '../identity/caller.ts';
import { recordKey } from './adapter.ts';
import { LAST_USED_RESOLUTION_MS } from '../identity/authenticate.ts';

// An OAuth access token, as the HTTP face meets it: one indexed read joining the token's record,
// its grant's api_token row and the user (no library involved: the hot path stays Mandate's own).

export interface VerifiedAccessToken {
  caller: UserCaller;
  /** The access token's expiry, or its grant's when that comes first. */
  expiresAt: Date;
}

interface AccessRow {
  access_expires_at: Date | string | null;
  aud: string | null;
  token_id: string;
  revoked_at: Date | string | null;
  expires_at: Date | string | null;
  last_used_at: Date | string | null;
  user_id: string;
  name: string;
  email: string;
  type: UserCaller['type'];
  active: boolean;
}

// Every refusal says the same as a refused API token: the caller learns nothing of why.
const rejected = () => new OpError('unauthenticated', 'invalid or expired credentials');

/**
 * The caller an OAuth access token authenticates: its grant's api_token row carries the scopes,
 * expiry and revocation, so the resolver treats it as it treats any token.
 */
export async function verifyAccessToken(source: EmSource, raw: string, now: Date): Promise<VerifiedAccessToken> {
  if (raw.length > 200) throw rejected();
  const em = emOf(source);
  const row = await em.execute<AccessRow>(
    `select r.expires_at as access_expires_at, r.payload->>'aud' as aud, t.id as token_id, t.revoked_at, t.expires_at, t.last_used_at,
            u.id as user_id, u.name, u.email, u.type, u.active
       from oauth_record r join api_token t on t.oauth_grant_id = r.grant_id join app_user u on u.id = t.user_id
      where r.key = ?`,
    [recordKey('AccessToken', raw)],
    'get',
  );
  if (!row || !row.active || row.revoked_at || !row.aud) throw rejected();
  const accessExpiry = row.access_expires_at ? new Date(row.access_expires_at) : null;
  const grantExpiry = row.expires_at ? new Date(row.expires_at) : null;
  const expiry = [accessExpiry, grantExpiry].filter((d): d is Date => d !== null).sort((a, b) => a.getTime() - b.getTime())[0];
  if (!expiry || expiry <= now) throw rejected();
  // Last use (what "connected applications" show) is written as for API tokens: at most once a minute.
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (now.getTime() - lastUsed >= LAST_USED_RESOLUTION_MS) await em.execute('update api_token set last_used_at = ? where id = ?', [now, row.token_id], 'run');
  return {
    caller: { kind: 'user', userId: row.user_id, name: row.name, email: row.email, type: row.type, tokenId: row.token_id, resource: row.aud },
    expiresAt: expiry,
  };
}
