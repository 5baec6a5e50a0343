import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { User } from './user.ts';

export const PM_PROVIDERS = ['jira_cloud', 'jira_dc', 'redmine', 'openproject'] as const;
export type PmProvider = (typeof PM_PROVIDERS)[number];

// Stored states; "not_connected" (no connection for a provider) is only ever computed.
export const CONNECTION_STATES = ['connected', 'invalid', 'expired', 'unavailable'] as const;
export type ConnectionState = (typeof CONNECTION_STATES)[number];

export const CONNECTION_AUTH = ['api_token', 'personal_access_token', 'api_key', 'oauth'] as const;
export type ConnectionAuth = (typeof CONNECTION_AUTH)[number];

// A user's own connection to a tracker. Its credentials are one vault ciphertext bound to the row
// (context `pm_connection:<id>`); deleting the account deletes its connections. At most one
// default per user, enforced by a partial unique index.
const PmConnectionSchema = defineEntity({
  name: 'PmConnection',
  tableName: 'pm_connection',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    user: () => p.manyToOne(User).deleteRule('cascade').index('pm_connection_user_idx'),
    provider: p.enum(PM_PROVIDERS),
    name: p.string().length(64),
    baseUrl: p.string().length(2000),
    auth: p.enum(CONNECTION_AUTH),
    // Vault ciphertext of the credential JSON; never the credential itself.
    secret: p.text(),
    // Jira Cloud over OAuth: the site's cloud id (API calls go through api.atlassian.com).
    cloudId: p.string().length(100).nullable(),
    accountId: p.string().length(200).nullable(),
    accountName: p.string().length(200).nullable(),
    status: p.enum(CONNECTION_STATES).default('connected'),
    statusReason: p.string().length(500).nullable(),
    verifiedAt: p.datetime().nullable(),
    scopes: p.json<string[]>().default('[]'),
    expiresAt: p.datetime().nullable(),
    isDefault: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [
    { name: 'pm_connection_user_name_unique', properties: ['user', 'name'] },
    { name: 'pm_connection_default_unique', properties: ['user'], where: 'is_default' },
  ],
});

export class PmConnection extends PmConnectionSchema.class {}
PmConnectionSchema.setClass(PmConnection);
export { PmConnectionSchema };
