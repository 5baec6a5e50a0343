import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { loadConfig } from '../../lib/config.ts';
import { createLogger } from '../../lib/log.ts';
import { openRuntime, type Runtime } from '../../lib/runtime.ts';
import { ROOT } from './cli.ts';
import { createPostgresDatabase, keepArtifact, recordSecret, TEST_DB, testRuntime } from './db.ts';
import { createHttpServer, listen } from '../../lib/http/server.ts';
import { errorOfToolResult } from '../../lib/mcp/server.ts';

export { ROOT, runProcess } from './cli.ts';
export const ENTRYPOINT = join(ROOT, 'entrypoint.sh');

/**
 * A database that separate server processes can open: a data directory on the embedded
 * database (one process at a time), a fresh PostgreSQL database otherwise.
 */
export interface ProcessDatabase {
  env: Record<string, string>;
  /** Opens a runtime on it in this process, runs `fn`, closes it (embedded: frees it for a server). */
  use<T>(fn: (runtime: Runtime) => Promise<T>): Promise<T>;
  dispose(): void | Promise<void>;
}

export type StdioMode = 'local' | 'remote';
export const STDIO_MODES: StdioMode[] = ['local', 'remote'];

/**
 * Where stdio servers under test get their data. local: a database they open themselves.
 * remote: a Mandate HTTP server in this process (on a fresh database), reached through
 * MANDATE_URL; the server processes get no database settings at all.
 */
export async function stdioBackend(mode: StdioMode): Promise<ProcessDatabase> {
  if (mode === 'local') return processDatabase();
  const runtime = await testRuntime();
  const server = createHttpServer(runtime);
  const { port } = await listen(server, '127.0.0.1', 0);
  return {
    env: { MANDATE_URL: `http://127.0.0.1:${port}`, MANDATE_LOG_LEVEL: 'info' },
    use: (fn) => fn(runtime),
    async dispose() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await runtime.close();
    },
  };
}

export async function processDatabase(): Promise<ProcessDatabase> {
  const env: Record<string, string> = { MANDATE_LOG_LEVEL: 'info' };
  let dir: string | undefined;
  if (TEST_DB === 'postgres') env.DATABASE_URL = await createPostgresDatabase();
  else env.MANDATE_DATA_DIR = dir = mkdtempSync(join(tmpdir(), 'mandate-stdio-'));
  return {
    env,
    async use(fn) {
      const logs: string[] = [];
      const stream = new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) });
      const runtime = await openRuntime(loadConfig(env), { command: 'test', log: createLogger({ level: 'info', stream }) });
      try {
        return await fn(runtime);
      } finally {
        await runtime.close();
        keepArtifact('log', logs.join(''));
      }
    },
    dispose() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ServerProcess {
  client: Client;
  stderr(): string;
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  toolNames(): Promise<string[]>;
  close(): Promise<void>;
}

/** Starts a Mandate stdio server process (`command args`) as `token` and connects the SDK client. */
export async function startServer(args: string[], env: Record<string, string>, token: string, command = process.execPath): Promise<ServerProcess> {
  recordSecret(token);
  const transport = new StdioClientTransport({
    command,
    args: command === process.execPath ? ['--disable-warning=ExperimentalWarning', ...args] : args,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env, MANDATE_TOKEN: token },
    stderr: 'pipe',
    cwd: ROOT,
  });
  let stderr = '';
  transport.stderr?.on('data', (chunk) => (stderr += chunk));
  const client = new Client({ name: 'mandate-test', version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    stderr: () => stderr,
    call: async (name, callArgs = {}) => (await client.callTool({ name, arguments: callArgs })) as CallToolResult,
    toolNames: async () => (await client.listTools()).tools.map((tool) => tool.name).sort(),
    async close() {
      await client.close();
      keepArtifact('stdio-stderr', stderr);
    },
  };
}

/** The structured result of a successful tool call; fails loudly on a tool error. */
export function ok<T = Record<string, unknown>>(result: CallToolResult): T {
  if (result.isError) throw new Error(`tool error: ${JSON.stringify(result.content)}`);
  return result.structuredContent as T;
}

/** The error of a failed tool call; fails loudly on success. */
export function toolError(result: CallToolResult): { code: string; message: string; field?: string } {
  if (!result.isError) throw new Error(`expected a tool error, got ${JSON.stringify(result.structuredContent)}`);
  return errorOfToolResult(result) as { code: string; message: string; field?: string };
}
