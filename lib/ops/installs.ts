import { randomUUID } from 'node:crypto';
import { cursorPage, installationOutput } from './outputs.ts';
import { z } from 'zod';
import { INSTALL_SCOPES, McpInstallation, Project, RoleAssignment, User, type McpCatalogEntry } from '../db/entities/index.ts';
import type { Em } from '../db/orm.ts';
import { invalid, OpError } from '../errors.ts';
import { operation, type OperationContext } from './operation.ts';
import { catalogRef } from './mcp-catalog.ts';
import { findCatalogEntry, findProject } from './lookups.ts';
import { afterCursor, cursorField, decodeCursor, limitField, page } from './pagination.ts';
import { projectKeyField, uuidField } from './schemas.ts';
import { userSummary } from './views.ts';
import { addAuditEvent } from '../audit/writer.ts';
import { callerUserId, type Caller } from '../identity/caller.ts';
import type { Vault } from '../vault.ts';

// Installations of catalog entries: personal (one user), team/project (a project's members) or
// org (everyone). Secrets are sealed with the vault under a context naming the installation and
// the field, and only ever reported as "set" or "not set".

const MEMBERS_SHOWN = 100;
const secretValue = z.string().min(1, 'must not be empty').max(10_000, 'must be at most 10000 characters');
const secretName = z.string().max(64, 'must be at most 64 characters');
const secretsInput = z.record(secretName, secretValue);

const secretContext = (installationId: string, field: string) => `mcp_installation:${installationId}:${field}`;

/** Users with a role in the project: the audience of a team or project installation. */
async function projectMembers(em: Em, project: Project, limit?: number): Promise<{ users: User[]; count: number }> {
  const assignments = await em.find(RoleAssignment, { project }, { populate: ['user'], orderBy: { createdAt: 'asc' } });
  const users = [...new Map(assignments.map((a) => [a.user.id, a.user as User])).values()];
  return { users: limit === undefined ? users : users.slice(0, limit), count: users.length };
}

/** Rejects secret names the catalog entry does not declare; names the offending field. */
function checkSecretNames(entry: McpCatalogEntry, secrets: Record<string, unknown>) {
  const known = new Set(entry.credentialFields.map((f) => f.name));
  for (const name of Object.keys(secrets)) {
    if (!known.has(name)) {
      const allowed = known.size ? [...known].join(', ') : 'none';
      throw invalid(`secrets.${name}`, `"${entry.name}" has no credential field "${name}" (its fields: ${allowed})`);
    }
  }
}

export async function installationView(em: Em, installation: McpInstallation) {
  await em.populate(installation, ['catalog', 'user', 'project', 'owner']);
  const entry = installation.catalog as McpCatalogEntry;
  const members =
    installation.scope === 'personal'
      ? { users: installation.user ? [installation.user as User] : [], count: 1 }
      : installation.project
        ? await projectMembers(em, installation.project as Project, MEMBERS_SHOWN)
        : { users: [], count: null };
  const secrets = Object.fromEntries(entry.credentialFields.map((f) => [f.name, installation.secrets[f.name] ? 'set' : 'not set']));
  const missing = entry.credentialFields.filter((f) => f.required && !installation.secrets[f.name]).map((f) => f.name);
  const unusable: string[] = [];
  if (installation.scope === 'personal' && installation.user && !(installation.user as User).active) unusable.push('its user is deactivated');
  if (missing.length) unusable.push(`required secrets not set: ${missing.join(', ')}`);
  const owner = installation.owner as User | null;
  return {
    id: installation.id,
    catalog_id: entry.id,
    catalog_name: entry.name,
    transport: entry.transport,
    scope: installation.scope,
    project_key: (installation.project as Project | null)?.key ?? null,
    owner_id: owner?.id ?? null,
    owner: owner ? userSummary(owner) : null,
    installed_by_id: installation.installedById,
    // org: everyone, so no list; team/project: the project's members (the first 100).
    everyone: installation.scope === 'org',
    users: members.users.map(userSummary),
    user_count: members.count,
    secrets,
    usable: unusable.length === 0,
    unusable_reasons: unusable,
    created_at: installation.createdAt.toISOString(),
    updated_at: installation.updatedAt.toISOString(),
  };
}

/** Whether the installation is for the caller: theirs, their project's, or everyone's. */
async function appliesTo(em: Em, installation: McpInstallation, userId: string): Promise<boolean> {
  if (installation.scope === 'org') return true;
  if (installation.scope === 'personal') return installation.user?.id === userId;
  return installation.project ? (await em.count(RoleAssignment, { project: installation.project, user: userId })) > 0 : false;
}

/**
 * An installation the caller may see: one that is for them or that they own, or any with
 * installs:read. Anything else is "not found", so ids of other people's installations reveal nothing.
 */
export async function visibleInstallation(ctx: OperationContext, id: string): Promise<McpInstallation> {
  const installation = await ctx.em.findOne(McpInstallation, { id });
  const notFound = new OpError('not_found', `MCP server installation ${id} not found among those you can see (installs:read shows everyone's)`, { field: 'id' });
  if (!installation) throw notFound;
  const me = callerUserId(ctx.caller);
  if (me === null || installation.owner?.id === me || (await appliesTo(ctx.em, installation, me))) return installation;
  if (await ctx.holds('installs:read', installation.project?.id ?? null)) return installation;
  throw notFound;
}

/**
 * Changing or removing an installation: a personal one's owner may (with installs:write, the
 * operation's own permission); anything else needs installs:admin (for a project's, in that project).
 */
export async function requireManage(ctx: OperationContext, installation: McpInstallation) {
  const me = callerUserId(ctx.caller);
  if (installation.scope === 'personal' && me !== null && installation.owner?.id === me) return;
  const project = installation.project as Project | null;
  await ctx.require('installs:admin', project?.id ?? null, project?.key);
}

/** The audit target of an install: the installation and whom it is for (user, project or org). */
function installTarget(installation: McpInstallation): string {
  const audience = installation.user ? `user:${installation.user.id}` : installation.project ? `project:${installation.project.id}` : 'org';
  return `mcp_server:${installation.id} ${audience}`;
}

export const installMcpServer = operation({
  name: 'install_mcp_server',
  servers: ['core', 'admin'],
  route: { method: 'POST', path: '/api/mcp_server', status: (value: { created: boolean }) => (value.created ? 201 : 200), camelCaseAliases: true },
  title: 'Install an MCP server',
  description:
    'Install a catalog entry (catalog_id: its id or name). scope "personal" (default) installs it for you, or with user_id for another user (needs installs:admin; the user must exist and be active). ' +
    'scope "team"/"project" (with project_key) installs it for a project\'s members, "org" for everyone; both need installs:admin. ' +
    'secrets maps the entry\'s credential fields to values; they are stored encrypted and never shown again. ' +
    'Installing what is already installed for the same audience returns the existing installation (created: false) unchanged. ' +
    'Returns the installation with owner_id, its users, and which secrets are set.',
  input: z.strictObject({
    catalog_id: catalogRef,
    scope: z.enum(INSTALL_SCOPES).default('personal'),
    user_id: uuidField('the user to install it for').optional(),
    project_key: projectKeyField.optional(),
    secrets: secretsInput.default({}),
  }),
  output: installationOutput.extend({ created: z.boolean(), note: z.string().optional() }),
  permission: 'installs:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: (input) => (input.user_id ? `user:${input.user_id}` : undefined),
  async run(ctx, input) {
    const me = callerUserId(ctx.caller);
    const projectScoped = input.scope === 'team' || input.scope === 'project';
    if (input.user_id && input.scope !== 'personal') {
      throw invalid('user_id', `only a personal installation is for one user; leave user_id out for scope "${input.scope}"`);
    }
    if (projectScoped && !input.project_key) throw invalid('project_key', `is required for scope "${input.scope}"`);
    if (!projectScoped && input.project_key) throw invalid('project_key', `scope "${input.scope}" is not for a project; use scope "project" or leave project_key out`);

    let user: User | null = null;
    let project: Project | null = null;
    if (input.scope === 'personal') {
      const targetId = input.user_id ?? me;
      if (!targetId) throw invalid('user_id', 'is required when no user is calling (a personal installation is for one user)');
      // Permission first: a non-admin learns nothing about which user ids exist.
      if (targetId !== me) await ctx.require('installs:admin');
      user = await ctx.em.findOne(User, { id: targetId });
      if (!user || !user.active) throw new OpError('not_found', `user ${targetId} not found or deactivated`, { field: 'user_id' });
    } else if (projectScoped) {
      project = await findProject(ctx.em, input.project_key!, 'project_key');
      await ctx.require('installs:admin', project.id, project.key);
    } else {
      await ctx.require('installs:admin');
    }
    const entry = await findCatalogEntry(ctx.em, input.catalog_id, 'catalog_id');
    checkSecretNames(entry, input.secrets);

    const id = randomUUID();
    const sealed = Object.fromEntries(Object.entries(input.secrets).map(([name, value]) => [name, ctx.vault.seal(value, secretContext(id, name))]));
    const now = ctx.now.toISOString();
    // One row per entry and audience, even when two admins install at the same moment: the
    // partial unique indexes decide, and the loser reads the winner's row.
    await ctx.em.execute(
      `insert into "mcp_installation" ("id", "catalog_id", "scope", "user_id", "project_id", "owner_id", "installed_by_id", "secrets", "created_at", "updated_at")
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing`,
      [id, entry.id, input.scope, user?.id ?? null, project?.id ?? null, user?.id ?? me, me, JSON.stringify(sealed), now, now],
    );
    const audience = user ? { user, scope: 'personal' as const } : project ? { project } : { scope: 'org' as const };
    const installation = await ctx.em.findOneOrFail(McpInstallation, { catalog: entry, ...audience });
    const created = installation.id === id;
    ctx.setTarget(installTarget(installation));
    return {
      ...(await installationView(ctx.em, installation)),
      created,
      ...(!created && Object.keys(input.secrets).length ? { note: 'already installed: the secrets given were not applied; update_mcp_server changes them' } : {}),
    };
  },
});

const listFilters = {
  scope: z.enum(INSTALL_SCOPES).optional(),
  catalog_id: catalogRef.optional(),
  limit: limitField,
  cursor: cursorField,
};

/** A page of installations matching `where`, oldest first. */
async function listPage(em: Em, where: Record<string, unknown>, input: { scope?: string; catalog_id?: string; limit: number; cursor?: string | undefined }) {
  const and: Record<string, unknown>[] = [where, afterCursor(decodeCursor(input.cursor), 'createdAt')];
  if (input.scope) and.push({ scope: input.scope });
  if (input.catalog_id) and.push({ catalog: await findCatalogEntry(em, input.catalog_id, 'catalog_id') });
  const rows = await em.find(McpInstallation, { $and: and }, { orderBy: { createdAt: 'asc', id: 'asc' }, limit: input.limit + 1, populate: ['catalog', 'user', 'project', 'owner'] });
  const { items, next_cursor } = page(rows, input.limit, (row) => row.createdAt);
  const views = [];
  for (const item of items) views.push(await installationView(em, item));
  return { items: views, next_cursor };
}

/** Installations for `userId`: personal ones, their projects', and everyone's. */
async function forUser(em: Em, userId: string) {
  const projects = (await em.find(RoleAssignment, { user: userId, project: { $ne: null } })).map((a) => a.project!.id);
  return { $or: [{ scope: 'personal', user: userId }, { scope: 'org' }, ...(projects.length ? [{ project: { $in: projects } }] : [])] };
}

export const listMyMcpServers = operation({
  name: 'list_my_mcp_servers',
  servers: ['core'],
  route: { method: 'GET', path: '/api/me/mcp_servers' },
  title: 'List my MCP servers',
  description:
    'List the MCP servers installed for you: your personal installations, your projects\' and everyone\'s, each with whether it is usable and which secrets are set. Filters: scope, catalog_id. Returns {items, next_cursor}.',
  input: z.strictObject(listFilters),
  output: cursorPage(installationOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const me = callerUserId(ctx.caller);
    if (!me) throw invalid('(caller)', 'only a user has installations of its own');
    return listPage(ctx.em, await forUser(ctx.em, me), input);
  },
});

export const listMcpServers = operation({
  name: 'list_mcp_servers',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/mcp_server' },
  title: 'List MCP server installations',
  description:
    'List MCP server installations. Without user_id or all: those for you (as list_my_mcp_servers). user_id: those for that user; all: true: every installation; both need installs:read. ' +
    'Filters: scope, catalog_id. Returns {items, next_cursor}.',
  input: z.strictObject({ ...listFilters, user_id: uuidField('a user').optional(), all: z.boolean().default(false) }),
  output: cursorPage(installationOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const me = callerUserId(ctx.caller);
    if (input.all && input.user_id) throw invalid('all', 'give either all or user_id, not both');
    if (input.all || (input.user_id && input.user_id !== me) || !me) await ctx.require('installs:read');
    if (input.all) return listPage(ctx.em, {}, input);
    return listPage(ctx.em, await forUser(ctx.em, input.user_id ?? me!), input);
  },
});

export const getMcpServer = operation({
  name: 'get_mcp_server',
  servers: ['core', 'admin'],
  route: { method: 'GET', path: '/api/mcp_server/{id}' },
  title: 'Get an MCP server installation',
  description: 'Get one installation: catalog entry, scope, owner, its users, whether it is usable, and which secrets are set (never their values).',
  input: z.strictObject({ id: uuidField('the installation') }),
  output: installationOutput,
  permission: null,
  effect: 'read',
  annotations: {},
  target: (input) => `mcp_server:${input.id}`,
  async run(ctx, input) {
    return installationView(ctx.em, await visibleInstallation(ctx, input.id));
  },
});

export const updateMcpServer = operation({
  name: 'update_mcp_server',
  servers: ['core', 'admin'],
  route: { method: 'PATCH', path: '/api/mcp_server/{id}' },
  title: 'Set the secrets of an MCP server installation',
  description:
    "Set or clear secrets of an installation: secrets maps credential field names to a new value, or to null to clear it; fields not named keep their value. The owner of a personal installation may; otherwise installs:admin. Values are stored encrypted and never shown. Returns the installation.",
  input: z.strictObject({
    id: uuidField('the installation'),
    secrets: z.record(secretName, secretValue.nullable()),
  }),
  output: installationOutput,
  permission: 'installs:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: (input) => `mcp_server:${input.id}`,
  async run(ctx, input) {
    const installation = await visibleInstallation(ctx, input.id);
    await requireManage(ctx, installation);
    await ctx.em.populate(installation, ['catalog']);
    checkSecretNames(installation.catalog as McpCatalogEntry, input.secrets);
    const next = { ...installation.secrets };
    for (const [name, value] of Object.entries(input.secrets)) {
      if (value === null) delete next[name];
      else next[name] = ctx.vault.seal(value, secretContext(installation.id, name));
    }
    installation.secrets = next;
    await ctx.em.flush();
    ctx.setTarget(installTarget(installation));
    return installationView(ctx.em, installation);
  },
});

export const uninstallMcpServer = operation({
  name: 'uninstall_mcp_server',
  servers: ['core', 'admin'],
  route: { method: 'DELETE', path: '/api/mcp_server/{id}' },
  title: 'Uninstall an MCP server',
  description:
    'Remove an installation and its stored secrets. The owner of a personal installation may; anyone else, and any team, project or org installation, needs installs:admin. Returns what was removed.',
  input: z.strictObject({ id: uuidField('the installation') }),
  output: installationOutput.extend({ uninstalled: z.literal(true) }),
  permission: 'installs:write',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: (input) => `mcp_server:${input.id}`,
  async run(ctx, input) {
    const installation = await visibleInstallation(ctx, input.id);
    await requireManage(ctx, installation);
    const view = await installationView(ctx.em, installation);
    ctx.setTarget(installTarget(installation));
    ctx.em.remove(installation);
    await ctx.em.flush();
    return { ...view, uninstalled: true };
  },
});

/** Opens an installation's stored secrets (for launching it; never for showing). */
export function openInstallationSecrets(vault: Vault, installation: Pick<McpInstallation, 'id' | 'secrets'>): Record<string, string> {
  return Object.fromEntries(Object.entries(installation.secrets).map(([name, sealed]) => [name, vault.open(sealed, secretContext(installation.id, name))]));
}

/**
 * Re-seals, with the vault's current key, every stored secret sealed with an older one, in one
 * transaction; afterwards the older keys can be dropped. Audited as one event. Returns the count.
 */
export async function resealInstallationSecrets(em: Em, vault: Vault, caller: Caller): Promise<{ installations: number; secrets: number }> {
  return em.transactional(async (tx) => {
    let installations = 0;
    let secrets = 0;
    for (const installation of await tx.find(McpInstallation, {}, { orderBy: { id: 'asc' } })) {
      const stale = Object.entries(installation.secrets).filter(([, sealed]) => vault.isStale(sealed));
      if (!stale.length) continue;
      const next = { ...installation.secrets };
      for (const [name, sealed] of stale) next[name] = vault.seal(vault.open(sealed, secretContext(installation.id, name)), secretContext(installation.id, name));
      installation.secrets = next;
      installations++;
      secrets += stale.length;
    }
    addAuditEvent(tx, { caller, operation: 'reseal_secrets', outcome: 'allowed', detail: { installations, secrets, keyId: vault.currentKeyId } });
    await tx.flush();
    return { installations, secrets };
  });
}
