import type { HttpSettings } from './http.ts';

// The PM toolsets: each deployment serves some of them, and a request may narrow them further
// (X-MCP-Toolsets). `connections` is always served: without it nobody could connect.
export const PM_TOOLSETS = ['connections', 'issues', 'workflow', 'comments', 'metadata', 'links', 'agile', 'worklogs', 'attachments'] as const;
export type PmToolset = (typeof PM_TOOLSETS)[number];

export interface PmSettings {
  http: HttpSettings;
  /** delete_issue and delete_attachment are destructive: served only where the deployment enables them. */
  allowDelete: boolean;
  /** Served toolsets (all when unset). */
  toolsets: ReadonlySet<PmToolset>;
  /** Where users reach this deployment: OAuth redirect URIs and connect links are built on it. */
  publicUrl: string;
  /** Jira Cloud OAuth 2.0 (3LO), when the deployment has an app registered with Atlassian. */
  jiraOAuth?: JiraOAuthSettings;
}

export interface JiraOAuthSettings {
  clientId: string;
  clientSecret: string;
  scopes: string[];
  /** Atlassian's authorization server (https://auth.atlassian.com). */
  authUrl: string;
  /** Atlassian's API gateway (https://api.atlassian.com): accessible resources, /ex/jira/<cloud id>. */
  apiUrl: string;
}

export class ToolsetListError extends Error {}

/** A comma-separated toolset list; unknown names are an error naming them and the valid ones. */
export function parseToolsetList(raw: string | undefined, source: string): ReadonlySet<PmToolset> {
  if (raw === undefined || raw.trim() === '' || raw.trim() === 'all') return new Set(PM_TOOLSETS);
  const names = raw.split(',').map((name) => name.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(PM_TOOLSETS as readonly string[]).includes(name));
  if (unknown.length) throw new ToolsetListError(`${source}: unknown toolset ${unknown.join(', ')} (toolsets: ${PM_TOOLSETS.join(', ')})`);
  return new Set(['connections', ...names] as PmToolset[]);
}

interface ServedOperation {
  toolset?: string;
  annotations: { destructiveHint?: boolean };
}

/**
 * Whether an operation is served: its PM toolset is on in the deployment (and in the request's
 * narrowing, if any), and destructive tracker tools only where deleting is enabled.
 */
export function servedBy(settings: Pick<PmSettings, 'toolsets' | 'allowDelete'>, narrowed?: ReadonlySet<PmToolset>) {
  return (op: ServedOperation): boolean => {
    if (op.toolset === undefined) return true;
    const toolset = op.toolset as PmToolset;
    if (!settings.toolsets.has(toolset)) return false;
    if (narrowed && !narrowed.has(toolset)) return false;
    return !(op.annotations.destructiveHint && toolset !== 'connections' && !settings.allowDelete);
  };
}
