import { McpInstallation, Project, RoleAssignment, User, type McpCatalogEntry } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import { OpError } from '../../errors.ts';
import type { UpstreamTarget } from '../../gateway/pool.ts';
import { namespaceOf } from '../../gateway/names.ts';
import type { Vault } from '../../vault.ts';
import { openInstallationSecrets } from '../installs.ts';

// Which installations a caller may use through the gateway, and what the gateway starts for them.

export interface UsableInstallation {
  installation: McpInstallation;
  entry: McpCatalogEntry;
  namespace: string;
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
    return {
      installation,
      entry,
      namespace: namespaceOf({ catalogName: entry.name, scope: installation.scope, projectKey: (installation.project as Project | null)?.key ?? null }),
    };
  });
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
export function upstreamTarget(vault: Vault, usable: UsableInstallation, userId: string): UpstreamTarget {
  const { installation, entry } = usable;
  let secrets: Record<string, string>;
  try {
    secrets = openInstallationSecrets(vault, installation);
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
    const env: Record<string, string> = { ...(process.env.PATH ? { PATH: process.env.PATH } : {}), ...secrets };
    return { ...common, transport: 'stdio', command: entry.command!, args: entry.args, env };
  }
  const url = new URL(entry.url!);
  for (const [name, template] of Object.entries(entry.query)) url.searchParams.set(name, fillTemplate(template, secrets));
  const headers = Object.fromEntries(Object.entries(entry.headers).map(([name, template]) => [name, fillTemplate(template, secrets)]));
  return { ...common, transport: 'remote', url: url.toString(), headers };
}
