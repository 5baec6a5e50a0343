import { GATEWAY_CHANGE_SUBJECT, McpInstallation, RoleAssignment, type McpCatalogEntry, type Project, type User } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import { OpError } from '../../errors.ts';
import type { UpstreamTarget } from '../../gateway/pool.ts';
import { namespaceOf } from '../../gateway/names.ts';
import type { Vault } from '../../vault.ts';
import { openInstallationSecrets } from '../installs.ts';
import { isLaunchVariable } from '../mcp-catalog.ts';
import type { OperationContext } from '../operation.ts';

// Which installations a caller may use through the gateway, and what the gateway starts for them.

/** An installation as the gateway uses it: plain data, so it can be cached across calls. */
export interface UsableInstallation {
  id: string;
  scope: string;
  projectId: string | null;
  projectKey: string | null;
  namespace: string;
  /** Sealed, as stored. */
  secrets: Record<string, string>;
  toolsPinnedAt: Date | null;
  updatedAt: Date;
  entry: Pick<McpCatalogEntry, 'name' | 'transport' | 'url' | 'command' | 'args' | 'headers' | 'query' | 'updatedAt' | 'launchApproved' | 'credentialFields'>;
}

/**
 * The installations for `userId` now: personal ones for them, their projects', and org-wide ones,
 * that are usable (every required secret set; a personal one's user active). Ordered by id.
 */
export async function usableInstallations(em: Em, userId: string): Promise<UsableInstallation[]> {
  const projects = (await em.find(RoleAssignment, { user: userId, project: { $ne: null } }, { fields: ['project'] })).map((a) => a.project!.id);
  const installations = await em.find(
    McpInstallation,
    { $or: [{ scope: 'personal', user: userId }, { scope: 'org' }, ...(projects.length ? [{ project: { $in: [...new Set(projects)] } }] : [])] },
    { populate: ['catalog', 'project', 'user'], orderBy: { id: 'asc' } },
  );
  return installations.filter(isUsable).map((installation) => {
    const entry = installation.catalog as McpCatalogEntry;
    const project = installation.project as Project | null;
    return {
      id: installation.id,
      scope: installation.scope,
      projectId: project?.id ?? null,
      projectKey: project?.key ?? null,
      namespace: namespaceOf({ catalogName: entry.name, scope: installation.scope, projectKey: project?.key ?? null }),
      secrets: installation.secrets,
      toolsPinnedAt: installation.toolsPinnedAt ?? null,
      updatedAt: installation.updatedAt,
      entry: {
        name: entry.name, transport: entry.transport, url: entry.url, command: entry.command, args: entry.args, headers: entry.headers, query: entry.query,
        updatedAt: entry.updatedAt, launchApproved: entry.launchApproved, credentialFields: entry.credentialFields,
      },
    };
  });
}

/**
 * usableInstallations, kept until an access change of the caller (deactivation, their roles and
 * projects) or of anything the gateway serves (catalog, installations, pins; see
 * GATEWAY_CHANGE_SUBJECT), in any process: a call costs no query for it.
 */
export function cachedUsableInstallations(ctx: OperationContext, userId: string): Promise<UsableInstallation[]> {
  return ctx.memo(userId, 'gateway-installations', () => usableInstallations(ctx.em, userId), () => [GATEWAY_CHANGE_SUBJECT]);
}

function isUsable(installation: McpInstallation): boolean {
  const entry = installation.catalog as McpCatalogEntry;
  if (installation.scope === 'personal' && installation.user && !(installation.user as User).active) return false;
  return entry.credentialFields.every((field) => !field.required || Boolean(installation.secrets[field.name]));
}

const PLACEHOLDER = /\{([A-Za-z][A-Za-z0-9_]{0,63})\}/g;

/** A header or query template with the installation's secrets in it (an unset optional one: empty). */
export function fillTemplate(template: string, secrets: Record<string, string>): string {
  return template.replace(PLACEHOLDER, (_match, name: string) => secrets[name] ?? '');
}

/** What the gateway starts or connects to for `userId`'s use of `installation`. */
export function upstreamTarget(vault: Vault, installation: UsableInstallation, userId: string): UpstreamTarget {
  const { entry } = installation;
  if (entry.transport === 'stdio' && !entry.launchApproved) {
    throw new OpError('forbidden', `MCP server "${entry.name}" may not be started: its command was defined before the gateway existed, and runs only once someone holding every permission saves the catalog entry again`);
  }
  // Only the entry's current credential fields: a secret kept for a field since removed sets nothing.
  const declared = new Set(entry.credentialFields.map((field) => field.name));
  let secrets: Record<string, string>;
  try {
    const stored = openInstallationSecrets(vault, { id: installation.id, secrets: Object.fromEntries(Object.entries(installation.secrets).filter(([name]) => declared.has(name))) });
    secrets = stored;
  } catch {
    throw new OpError('unavailable', `the secrets of MCP server "${entry.name}" cannot be opened with this deployment's vault keys; an admin must set them again`);
  }
  const common = {
    userId,
    installationId: installation.id,
    version: `${installation.updatedAt.getTime()}:${entry.updatedAt.getTime()}`,
    label: entry.name,
    secrets: Object.values(secrets),
  };
  if (entry.transport === 'stdio') {
    // The process gets its secrets and PATH (to find its command), nothing else of Mandate's environment.
    const env: Record<string, string> = { ...(process.env.PATH ? { PATH: process.env.PATH } : {}) };
    for (const [name, value] of Object.entries(secrets)) if (!isLaunchVariable(name)) env[name] = value;
    return { ...common, transport: 'stdio', command: entry.command!, args: entry.args, env };
  }
  const url = new URL(entry.url!);
  for (const [name, template] of Object.entries(entry.query)) url.searchParams.set(name, fillTemplate(template, secrets));
  const headers = Object.fromEntries(Object.entries(entry.headers).map(([name, template]) => [name, fillTemplate(template, secrets)]));
  return { ...common, transport: 'remote', url: url.toString(), headers };
}
