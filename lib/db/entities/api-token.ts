import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';
import { accessChangeTrigger } from './access-change.ts';

const ApiTokenSchema = defineEntity({
  name: 'ApiToken',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index('api_token_user_idx'),
    name: p.string().length(100),
    // First characters of the raw token, enough for a person to recognise it in a list.
    prefix: p.string().length(16),
    // SHA-256 of the raw token, hex; the raw token is never stored.
    hash: p.string().length(64).unique('api_token_hash_unique').hidden(),
    // null = no narrowing; otherwise the token carries at most these permissions.
    scopes: p.array().nullable(),
    expiresAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    createdById: p.uuid().nullable(),
    // P3: a token minted through a delegation works only while that delegation does (the resolver
    // checks it at every use; a deleted delegation ends it too).
    sourceDelegationId: p.uuid().nullable(),
    revokedAt: p.datetime().nullable(),
    // Set for the grant a user gave an OAuth client: the client's access tokens act through this
    // row (its scopes, expiry and revocation), and no raw `mnd_` token of it exists.
    oauthGrantId: p.string().length(64).nullable().unique('api_token_oauth_grant_unique'),
    oauthClientId: p.string().length(255).nullable(),
  },
  // Everything but the last-used time counts (those writes come with every use).
  triggers: [
    accessChangeTrigger(
      'api_token_access_change_update',
      ['update'],
      'user_id',
      '((old.revoked_at IS DISTINCT FROM new.revoked_at) OR (old.expires_at IS DISTINCT FROM new.expires_at) OR (old.scopes IS DISTINCT FROM new.scopes) OR (old.user_id IS DISTINCT FROM new.user_id) OR ((old.hash)::text IS DISTINCT FROM (new.hash)::text) OR (old.source_delegation_id IS DISTINCT FROM new.source_delegation_id) OR ((old.oauth_grant_id)::text IS DISTINCT FROM (new.oauth_grant_id)::text))',
    ),
    accessChangeTrigger('api_token_access_change_delete', ['delete'], 'user_id'),
  ],
});

export class ApiToken extends ApiTokenSchema.class {}
ApiTokenSchema.setClass(ApiToken);
export { ApiTokenSchema };
