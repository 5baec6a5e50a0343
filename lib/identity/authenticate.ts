import { emOf, type Em, type EmSource } from '../db/orm.ts';
import { OpError } from '../errors.ts';
import type { UserCaller } from './caller.ts';
import { verifyPassword } from './passwords.ts';
import { hashApiToken, looksLikeApiToken } from './tokens.ts';

interface TokenRow {
  token_id: string;
  user_id: string;
  name: string;
  email: string;
  type: UserCaller['type'];
  active: boolean;
  expires_at: Date | string | null;
  revoked_at: Date | string | null;
  last_used_at: Date | string | null;
}

// Every failure says the same thing, so a caller learns nothing about which part was wrong.
const rejected = () => new OpError('unauthenticated', 'invalid or expired credentials');

/** Last-used is recorded at most once a minute per token, so calls do not each cost a write. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export async function authenticateToken(em: Em, raw: string, now = new Date()): Promise<UserCaller> {
  return (await verifyToken(em, raw, now)).caller;
}

/** The caller an API token authenticates, and until when the token is valid. */
export async function verifyToken(source: EmSource, raw: string, now = new Date()): Promise<{ caller: UserCaller; expiresAt: Date | null }> {
  if (!looksLikeApiToken(raw)) throw rejected();
  const em = emOf(source);
  const row = await em.execute<TokenRow>(
    `select t.id as token_id, u.id as user_id, u.name, u.email, u.type, u.active, t.expires_at, t.revoked_at, t.last_used_at
       from api_token t join app_user u on u.id = t.user_id
      where t.hash = ?`,
    [hashApiToken(raw)],
    'get',
  );
  if (!row || !row.active || row.revoked_at) throw rejected();
  if (row.expires_at && new Date(row.expires_at) <= now) throw rejected();
  const lastUsed = row.last_used_at ? new Date(row.last_used_at).getTime() : 0;
  if (now.getTime() - lastUsed >= LAST_USED_RESOLUTION_MS) {
    await em.execute('update api_token set last_used_at = ? where id = ?', [now, row.token_id], 'run');
  }
  return {
    caller: { kind: 'user', userId: row.user_id, name: row.name, email: row.email, type: row.type, tokenId: row.token_id },
    expiresAt: row.expires_at ? new Date(row.expires_at) : null,
  };
}

export async function authenticatePassword(source: EmSource, email: string, password: string): Promise<UserCaller> {
  const row = await emOf(source).execute<{ id: string; name: string; email: string; type: UserCaller['type']; active: boolean; password_hash: string | null }>(
    'select id, name, email, type, active, password_hash from app_user where email = ?',
    [email.trim().toLowerCase()],
    'get',
  );
  // Unknown users and users without a password still pay one full verify (against a dummy hash).
  const ok = await verifyPassword(row?.password_hash, password);
  if (!row || !ok || !row.active) throw rejected();
  return { kind: 'user', userId: row.id, name: row.name, email: row.email, type: row.type };
}

/**
 * For local processes started with MANDATE_TOKEN (stdio servers, `mandate agent`): the token's
 * caller, or an unauthenticated error that says why the token was refused.
 */
export async function authenticateEnvToken(em: Em, raw: string): Promise<UserCaller> {
  try {
    return await authenticateToken(em, raw);
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    throw new OpError('unauthenticated', `MANDATE_TOKEN ${await explainTokenFailure(em, raw)}`);
  }
}

/**
 * Why a token was refused, for the one line a local stdio server prints at start. Only the
 * holder of the token sees it (it is never an HTTP answer), so naming the reason is safe.
 */
export async function explainTokenFailure(em: Em, raw: string, now = new Date()): Promise<string> {
  if (!looksLikeApiToken(raw)) return 'is not a Mandate API token (they start with mnd_)';
  const row = await em.execute<{ active: boolean; expires_at: Date | string | null; revoked_at: Date | string | null }>(
    'select u.active, t.expires_at, t.revoked_at from api_token t join app_user u on u.id = t.user_id where t.hash = ?',
    [hashApiToken(raw)],
    'get',
  );
  if (!row) return 'is not known to this Mandate database';
  if (row.revoked_at) return 'has been revoked';
  if (row.expires_at && new Date(row.expires_at) <= now) return 'has expired';
  if (!row.active) return "belongs to a deactivated user";
  return 'was refused';
}
