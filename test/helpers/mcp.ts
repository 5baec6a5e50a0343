import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { type CallToolResult, ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { UserCaller } from '../../lib/identity/caller.ts';
import { startSession } from '../../lib/identity/sessions.ts';
import { localBackend } from '../../lib/mcp/backend.ts';
import { createMcpServer } from '../../lib/mcp/server.ts';
import { localCatalog } from '../../lib/mcp/local-catalog.ts';
import type { Toolset } from '../../lib/mcp/toolset.ts';
import type { Runtime } from '../../lib/runtime.ts';
import { SERVERS } from '../../servers/index.ts';

export interface McpSession {
  caller: UserCaller & { sessionId: string };
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  toolNames(): Promise<string[]>;
  /** A raw request, as a client that does not check its own requests would send it. */
  request(method: string, params?: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

/** The same server factory the stdio runner uses, in this process, bound to a fresh session. */
export async function mcpSession(runtime: Runtime, caller: UserCaller, servers: (keyof typeof SERVERS)[], readOnly = false): Promise<McpSession> {
  const toolsets: Toolset[] = servers.map((name) => SERVERS[name]!);
  const bound = await startSession(runtime.db.orm.em.fork(), caller, { transport: 'stdio', servers });
  const server = createMcpServer({ catalog: localCatalog(toolsets, readOnly), backend: localBackend(runtime, bound) });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'mandate-test', version: '1.0.0' });
  await client.connect(clientSide);
  return {
    caller: bound,
    call: async (name, args = {}) => (await client.callTool({ name, arguments: args })) as CallToolResult,
    toolNames: async () => (await client.listTools()).tools.map((tool) => tool.name).sort(),
    request: (method, params) => client.request({ method, ...(params ? { params } : {}) } as never, ResultSchema.loose()),
    close: () => client.close(),
  };
}
