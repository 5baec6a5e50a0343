import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { McpCatalogEntry } from './mcp-catalog-entry.ts';
import { Project } from './project.ts';
import { User } from './user.ts';
import { gatewayChangeTrigger } from './gateway-change.ts';

// personal: one user; team and project: the members of a project; org: everyone.
export const INSTALL_SCOPES = ['personal', 'team', 'project', 'org'] as const;
export type InstallScope = (typeof INSTALL_SCOPES)[number];

// An installed MCP server. A personal installation belongs to its user (deleting the account
// deletes it; deactivating leaves it, unusable); the others to whoever installed them. One per
// catalog entry and audience, enforced by partial unique indexes, so two admins installing the
// same thing at the same moment still get one row.
const McpInstallationSchema = defineEntity({
  name: 'McpInstallation',
  tableName: 'mcp_installation',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    catalog: () => p.manyToOne(McpCatalogEntry).deleteRule('cascade').index('mcp_installation_catalog_idx'),
    scope: p.enum(INSTALL_SCOPES),
    // The user a personal installation is for.
    user: () => p.manyToOne(User).nullable().deleteRule('cascade').index('mcp_installation_user_idx'),
    project: () => p.manyToOne(Project).nullable().deleteRule('cascade'),
    owner: () => p.manyToOne(User).nullable().deleteRule('set null').index('mcp_installation_owner_idx'),
    // A plain id: who ran the install (an admin installing for someone else, or the user).
    installedById: p.uuid().nullable(),
    // Field name -> vault ciphertext (never the value itself).
    secrets: p.json<Record<string, string>>().default('{}'),
    // When the gateway first listed its tools (and pinned them all): tools appearing later start quarantined.
    toolsPinnedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  // The audience columns match the scope, whatever writes the row.
  checks: [
    {
      name: 'mcp_installation_audience_check',
      expression: "((scope = 'personal') = (user_id is not null)) and ((scope in ('team', 'project')) = (project_id is not null))",
    },
  ],
  triggers: [gatewayChangeTrigger('mcp_installation')],
  uniques: [
    { name: 'mcp_installation_personal_unique', properties: ['catalog', 'user'], where: "scope = 'personal'" },
    { name: 'mcp_installation_project_unique', properties: ['catalog', 'project'], where: 'project_id is not null' },
    { name: 'mcp_installation_org_unique', properties: ['catalog'], where: "scope = 'org'" },
  ],
});

export class McpInstallation extends McpInstallationSchema.class {}
McpInstallationSchema.setClass(McpInstallation);
export { McpInstallationSchema };
