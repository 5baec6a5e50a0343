// How an installation's tools are named in a caller's tool list: `<namespace>__<tool>`. The
// namespace is the catalog name, with the audience after a "." when the installation is not the
// caller's own (catalog names have neither "." nor "__"): `.org`, or `.p-<project key>` (so no
// project key can read as `.org`). Names never change with what else is installed and never
// collide with Mandate's own tools (none has "__"); a name two installations could both claim is
// served by neither (see lib/ops/gateway/tools.ts).

export const SEPARATOR = '__';
/** The MCP specification's limit and alphabet for tool names. */
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export interface Namespaced {
  catalogName: string;
  scope: string;
  projectKey: string | null;
}

export function namespaceOf(installation: Namespaced): string {
  if (installation.scope === 'personal') return installation.catalogName;
  if (installation.scope === 'org') return `${installation.catalogName}.org`;
  return `${installation.catalogName}.p-${(installation.projectKey ?? 'project').toLowerCase()}`;
}

/** The name a caller sees; null when the upstream name cannot be one (alphabet, length). */
export function gatewayToolName(namespace: string, tool: string): string | null {
  const name = `${namespace}${SEPARATOR}${tool}`;
  return TOOL_NAME.test(name) ? name : null;
}
