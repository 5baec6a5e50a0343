import type { Em } from '../db/orm.ts';
import { ApiToken, OAuthRecord } from '../db/entities/index.ts';
import { recordKey } from './adapter.ts';

// Ending a grant, in one place, whoever ends it (the library on a replayed code or a reused refresh
// token, the user, an admin, a deleted client): its api_token row is revoked (an access
// change of its user), and its records go (codes, tokens, the library's grant), so nothing is issued from it again.

export async function endGrant(em: Em, grantId: string, now: Date): Promise<void> {
  await em.nativeUpdate(ApiToken, { oauthGrantId: grantId, revokedAt: null }, { revokedAt: now });
  await em.nativeDelete(OAuthRecord, { $or: [{ grantId }, { key: recordKey('Grant', grantId) }] });
}

/** Every grant users gave a client, and the client's own records; how many grants were live. */
export async function endClientGrants(em: Em, clientId: string, now: Date): Promise<number> {
  const ended = await em.nativeUpdate(ApiToken, { oauthClientId: clientId, revokedAt: null }, { revokedAt: now });
  await em.nativeDelete(OAuthRecord, { clientId });
  return ended;
}
