import type { RoleServers } from './servers.ts';

export const CLIENTS = ['claude-code', 'claude-desktop', 'cursor', 'vscode'] as const;
export type Client = (typeof CLIENTS)[number];
/** Clients that only connect over HTTP, with OAuth (they take no pasted token). */
export const OAUTH_ONLY_CLIENTS = ['claude-ai', 'chatgpt'] as const;
export type HttpClient = Client | (typeof OAUTH_ONLY_CLIENTS)[number];
export const AUTH_MODES = ['token', 'oauth'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];
/** What `config` prints when no client is named. */
export const DEFAULT_CLIENT: Client = 'claude-code';

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
  if (client === 'cursor' || client === 'vscode') return `\${env:${name}}`;
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
    ...(request.client === 'claude-code' || request.client === 'vscode' ? { type: 'stdio' } : {}),
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
  // VS Code's mcp.json calls the list "servers".
  return request.client === 'vscode' ? { servers: mcpServers } : { mcpServers };
}

/**
 * How each client reaches a running Mandate over Streamable HTTP (`url`: the deployment's /mcp).
 * The token is never in the output: a reference the client (or shell) expands, or a prompt.
 * Claude Code: the `claude mcp add` command line; Cursor: `url` + `headers`; VS Code: `servers`
 * with `type: "http"` and a password prompt; Claude Desktop: the mcp-remote bridge over stdio.
 */
export function httpClientConfig(client: HttpClient, url: string, auth: AuthMode = 'token'): string {
  const mcp = `${url.replace(/\/+$/, '')}/mcp`;
  if (auth === 'oauth' || client === 'claude-ai' || client === 'chatgpt') return oauthClientConfig(client, mcp);
  switch (client) {
    case 'claude-code':
      return `claude mcp add --transport http mandate ${mcp} --header "Authorization: Bearer \${MANDATE_TOKEN}"`;
    case 'cursor':
      return json({ mcpServers: { mandate: { url: mcp, headers: { Authorization: 'Bearer ${env:MANDATE_TOKEN}' } } } });
    case 'vscode':
      return json({
        inputs: [{ type: 'promptString', id: 'mandate-token', description: 'Mandate API token (mnd_…)', password: true }],
        servers: { mandate: { type: 'http', url: mcp, headers: { Authorization: 'Bearer ${input:mandate-token}' } } },
      });
    case 'claude-desktop':
      return json({
        mcpServers: {
          mandate: { command: 'npx', args: ['-y', 'mcp-remote', mcp, '--header', 'Authorization:Bearer ${MANDATE_TOKEN}'], env: { MANDATE_TOKEN: '<set MANDATE_TOKEN here>' } },
        },
      });
  }
}

/**
 * With OAuth (the server has MANDATE_PUBLIC_URL), a client needs only the URL: on the first 401 it
 * discovers Mandate's authorization server, registers, and sends the user to sign in and consent.
 */
function oauthClientConfig(client: HttpClient, mcp: string): string {
  switch (client) {
    case 'claude-code':
      return `claude mcp add --transport http mandate ${mcp}`;
    case 'cursor':
      return json({ mcpServers: { mandate: { url: mcp } } });
    case 'vscode':
      return json({ servers: { mandate: { type: 'http', url: mcp } } });
    case 'claude-desktop':
      return json({ mcpServers: { mandate: { command: 'npx', args: ['-y', 'mcp-remote', mcp] } } });
    case 'claude-ai':
      return `In claude.ai (or Claude Desktop): Settings → Connectors → Add custom connector. Name: Mandate. Remote MCP server URL: ${mcp}. Leave the OAuth client id and secret empty (Mandate accepts dynamic registration and client metadata documents). Then Connect: sign in to Mandate and allow.`;
    case 'chatgpt':
      return `In ChatGPT: Settings → Apps & Connectors → Advanced → Developer mode on, then Create. Name: Mandate. MCP server URL: ${mcp}. Authentication: OAuth (dynamic registration: leave the client fields empty). Then sign in to Mandate and allow.`;
  }
}

const json = (value: unknown) => JSON.stringify(value, null, 2);
