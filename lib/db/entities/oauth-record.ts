import { defineEntity, p } from '@mikro-orm/core';
import { accessChangeTrigger } from './access-change.ts';

// What the OAuth authorization server (oidc-provider) keeps: authorization codes, access and
// refresh tokens, grants, browser sessions, interactions and registered clients, one row each.
// `key` is `<model>:<id>`, where the id of everything but a client is stored as its SHA-256: a
// database read never yields a usable code, token or session cookie. The payload is the
// library's own record, without its `jti` (that is the id itself).
const OAuthRecordSchema = defineEntity({
  name: 'OAuthRecord',
  tableName: 'oauth_record',
  properties: {
    key: p.string().length(300).primary(),
    model: p.string().length(40),
    payload: p.json<Record<string, unknown>>(),
    grantId: p.string().length(64).nullable().index('oauth_record_grant_idx'),
    uid: p.string().length(64).nullable().index('oauth_record_uid_idx'),
    clientId: p.string().length(255).nullable().index('oauth_record_client_idx'),
    expiresAt: p.datetime().nullable().index('oauth_record_expires_idx'),
    consumedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    // Clients only: when one last obtained a grant (never: a registration that may expire).
    lastUsedAt: p.datetime().nullable(),
  },
  // An access token revoked on its own (RFC 7009) is refused at once by every instance's caches.
  // The token's user (its accountId); anyone, should that not be a user id.
  triggers: [
    accessChangeTrigger(
      'oauth_record_access_change_delete',
      ['delete'],
      "case when ($row.payload ->> 'accountId') ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then ($row.payload ->> 'accountId')::uuid end",
      "((old.model)::text = 'AccessToken'::text)",
    ),
  ],
});

export class OAuthRecord extends OAuthRecordSchema.class {}
OAuthRecordSchema.setClass(OAuthRecord);
export { OAuthRecordSchema };
