import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { gatewayChangeTrigger } from './gateway-change.ts';

export const MCP_TRANSPORTS = ['remote', 'stdio'] as const;
export type McpTransport = (typeof MCP_TRANSPORTS)[number];

/** A value an installation must supply, e.g. an API key; stored sealed per installation. */
export interface CredentialField {
  name: string;
  description: string;
  required: boolean;
}

// An MCP server admins offer for installation: where it runs (a remote URL, or a command with
// arguments for stdio) and which credentials an installation of it needs.
const McpCatalogEntrySchema = defineEntity({
  name: 'McpCatalogEntry',
  tableName: 'mcp_catalog',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    name: p.string().length(64).unique('mcp_catalog_name_unique'),
    description: p.text().default(''),
    transport: p.enum(MCP_TRANSPORTS),
    url: p.string().length(2000).nullable(),
    command: p.string().length(500).nullable(),
    args: p.json<string[]>().default('[]'),
    credentialFields: p.json<CredentialField[]>().default('[]'),
    // How a remote server gets an installation's secrets: header and query parameter templates
    // naming credential fields in braces, e.g. {"Authorization": "Bearer {API_KEY}"}.
    headers: p.json<Record<string, string>>().default('{}'),
    query: p.json<Record<string, string>>().default('{}'),
    // A stdio entry's command may run only once someone holding every permission defined or re-saved
    // it (entries older than the gateway were defined when defining one ran nothing).
    launchApproved: p.boolean().default(false),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  triggers: [gatewayChangeTrigger('mcp_catalog')],
});

export class McpCatalogEntry extends McpCatalogEntrySchema.class {}
McpCatalogEntrySchema.setClass(McpCatalogEntry);
export { McpCatalogEntrySchema };
