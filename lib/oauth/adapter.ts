import { createHash } from 'node:crypto';
import type { Orm } from '../db/orm.ts';

// oidc-provider's storage, on MikroORM (one table, `oauth_record`, on PostgreSQL and PGlite alike).
// Ids of codes, tokens, sessions, interactions and grants are stored as SHA-256 (clients keep
// theirs: a client id is no secret and admins list them). `jti` is dropped from every payload and
// put back on read, so no column ever holds a usable value.

type Payload = Record<string, unknown> & { grantId?: string; uid?: string; clientId?: string; client_id?: string; consumed?: number };

interface Row {
  payload: Payload | string;
  expires_at: Date | string | null;
  consumed_at: Date | string | null;
}

export interface AdapterHooks {
  /** A grant ended (revoked, replayed code or refresh token, user revocation): its Mandate side ends too. */
  grantEnded(grantId: string): Promise<void>;
  /** A client's secret at rest: sealed on write, opened on read. */
  sealSecret(secret: string, clientId: string): string;
  openSecret(sealed: string, clientId: string): string;
}

/** SHA-256, hex: how lib/oauth stores what it must not keep in the clear. */
export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');

export const recordKey = (model: string, id: string) => `${model}:${model === 'Client' ? id : sha256Hex(id)}`;

const toDate = (value: Date | string | null) => (value === null ? null : new Date(value));

const FIND_SQL: Record<string, string> = {
  default: `select payload, expires_at, consumed_at from oauth_record where key = ?`,
  // A grant whose api_token row was revoked or expired (deactivation, revoke_my_oauth_grant) is
  // no grant: the library must not reuse it and skip consent.
  Grant: `select payload, expires_at, consumed_at from oauth_record where key = ?
            and not exists (select 1 from api_token t where t.oauth_grant_id = ? and (t.revoked_at is not null or t.expires_at <= now()))`,
  // A browser sign-in of a user who is no longer active is no sign-in: the page asks again.
  Session: `select payload, expires_at, consumed_at from oauth_record r where key = ?
              and (r.payload->>'accountId' is null
                   or exists (select 1 from app_user u where u.id::text = r.payload->>'accountId' and u.active))`,
};

export function oauthAdapter(orm: Orm, hooks: AdapterHooks) {
  const execute = <T extends object = object>(sql: string, params: unknown[], mode: 'get' | 'run' | 'all' = 'all') =>
    orm.em.fork().execute(sql, params, mode as 'get') as Promise<T | undefined>;

  // A stored record as the library expects it: expired ones are gone, a client's secret opened,
  // a token's jti put back.
  function read(model: string, row: Row | undefined, id: string | undefined): Payload | undefined {
    if (!row) return undefined;
    const expiresAt = toDate(row.expires_at);
    if (expiresAt && expiresAt.getTime() <= Date.now()) return undefined;
    const payload = (typeof row.payload === 'string' ? JSON.parse(row.payload) : row.payload) as Payload;
    if (model === 'Client') {
      if (typeof payload.client_secret === 'string') payload.client_secret = hooks.openSecret(payload.client_secret, String(payload.client_id));
      return payload;
    }
    return id === undefined ? payload : { ...payload, jti: id };
  }

  return class MandateOAuthAdapter {
    readonly model: string;

    constructor(model: string) {
      this.model = model;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const { jti: _jti, ...stored } = payload;
      if (this.model === 'Client' && typeof stored.client_secret === 'string') {
        stored.client_secret = hooks.sealSecret(stored.client_secret, id);
      }
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      const clientId = (this.model === 'Client' ? id : stored.clientId) ?? null;
      await execute(
        `insert into oauth_record (key, model, payload, grant_id, uid, client_id, expires_at, consumed_at, created_at)
         values (?, ?, ?::jsonb, ?, ?, ?, ?, null, now())
         on conflict (key) do update set payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid,
           client_id = excluded.client_id, expires_at = excluded.expires_at`,
        [recordKey(this.model, id), this.model, JSON.stringify(stored), stored.grantId ?? null, stored.uid ? sha256Hex(stored.uid) : null, clientId, expiresAt],
        'run',
      );
      // A client that obtains a grant is in use: it no longer expires as an abandoned registration.
      if (this.model === 'Grant' && typeof stored.clientId === 'string') {
        await execute(`update oauth_record set last_used_at = now() where key = ?`, [recordKey('Client', stored.clientId)], 'run');
      }
    }

    async find(id: string): Promise<Payload | undefined> {
      // An id no record can have (a client id is stored as given): nothing to look up.
      if (id.length > 255 || /[\u0000\uD800-\uDFFF]/.test(id)) return undefined;
      const row = await execute<Row>(FIND_SQL[this.model] ?? FIND_SQL.default!, this.model === 'Grant' ? [recordKey(this.model, id), id] : [recordKey(this.model, id)], 'get');
      return read(this.model, row, id);
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      const row = await execute<Row & { key: string }>(
        `select key, payload, expires_at, consumed_at from oauth_record where model = ? and uid = ?`,
        [this.model, sha256Hex(uid)],
        'get',
      );
      if (!row) return undefined;
      // The session's own id is only known as a hash here; the library needs it back to update the
      // row, so a session found by uid keeps that uid as its id.
      return read(this.model, row, undefined);
    }

    async findByUserCode(): Promise<undefined> {
      return undefined; // no device flow
    }

    async consume(id: string): Promise<void> {
      const now = Math.floor(Date.now() / 1000);
      await execute(
        `update oauth_record set consumed_at = now(), payload = jsonb_set(payload, '{consumed}', to_jsonb(?::bigint)) where key = ?`,
        [now, recordKey(this.model, id)],
        'run',
      );
    }

    async destroy(id: string): Promise<void> {
      await execute(`delete from oauth_record where key = ?`, [recordKey(this.model, id)], 'run');
      if (this.model === 'Grant') await hooks.grantEnded(id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await execute(`delete from oauth_record where model = ? and grant_id = ?`, [this.model, grantId], 'run');
      await hooks.grantEnded(grantId);
    }
  };
}
