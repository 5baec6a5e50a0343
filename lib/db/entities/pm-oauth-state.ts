import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';
import { PM_PROVIDERS } from './pm-connection.ts';

// One OAuth authorization a user started and has not finished: found by the SHA-256 of its opaque
// `state` (the state itself is never stored), usable once, until it expires. The PKCE verifier is
// sealed with the vault (context `pm_oauth_state:<id>`).
const PmOauthStateSchema = defineEntity({
  name: 'PmOauthState',
  tableName: 'pm_oauth_state',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    stateHash: p.string().length(64).unique('pm_oauth_state_hash_unique'),
    user: () => p.manyToOne(User).deleteRule('cascade').index('pm_oauth_state_user_idx'),
    provider: p.enum(PM_PROVIDERS),
    verifier: p.text(),
    // What the user asked for when starting: which site (when the grant covers several), the
    // connection's name, whether it becomes the default.
    site: p.string().length(255).nullable(),
    connectionName: p.string().length(64).nullable(),
    makeDefault: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    expiresAt: p.datetime(),
  },
});

export class PmOauthState extends PmOauthStateSchema.class {}
PmOauthStateSchema.setClass(PmOauthState);
export { PmOauthStateSchema };
