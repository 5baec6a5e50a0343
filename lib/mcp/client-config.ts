import type { RoleServers } from '../../servers/index.ts';

export const CLIENTS = ['claude-code', 'claude-desktop', 'cursor'] as const;
export type Client = (typeof CLIENTS)[number];

export interface ClientConfigRequest {
  role: string;
  roleServers: RoleServers;
  client: Client;
  /** Absolute path of entrypoint.sh. */
  entrypoint: string;
  /** Embedded PGlite serves one process: one composed entry instead of one per server. */
  embedded: boolean;
  /** Where the embedded database lives (not a secret), when it is not the default. */
  dataDir?: string | undefined;
}

// Secrets never appear in the output: the token and the database URL are references to the
// client's environment where the client expands them, and placeholders where it does not.
function envReference(client: Client, name: string): string {
  if (client === 'claude-code') return `\${${name}}`;
  if (client === 'cursor') return `\${env:${name}}`;
  return `<set ${name} here>`;
}

/** The `mcpServers` JSON that Claude Code (.mcp.json), Claude Desktop and Cursor (mcp.json) read. */
export function clientConfig(request: ClientConfigRequest) {
  const env: Record<string, string> = { AGENT_ROLE: request.role, MANDATE_TOKEN: envReference(request.client, 'MANDATE_TOKEN') };
  if (request.embedded) {
    if (request.dataDir) env.MANDATE_DATA_DIR = request.dataDir;
  } else {
    env.DATABASE_URL = envReference(request.client, 'DATABASE_URL');
  }
  const entry = (args: string[]) => ({
    ...(request.client === 'claude-code' ? { type: 'stdio' } : {}),
    command: request.entrypoint,
    args,
    env: { ...env },
  });
  const mcpServers: Record<string, ReturnType<typeof entry>> = {};
  if (request.embedded) {
    mcpServers.mandate = entry(['serve']);
  } else {
    for (const server of request.roleServers.servers) mcpServers[`mandate-${server}`] = entry(['serve', server]);
  }
  return { mcpServers };
}
