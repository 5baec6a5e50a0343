import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { OpError } from '../errors.ts';
import type { ToolBackend } from './backend.ts';
import { catalogFromJson, type ServedTool } from './catalog.ts';
import { RemoteBackend } from './remote.ts';
import { createMcpServer } from './server.ts';

/** How long a closing server lets calls in flight finish, and the point where it exits regardless. */
const DRAIN_MS = 5_000;
const FORCE_EXIT_MS = 10_000;

export interface StdioOptions {
  /** The MCP servers to serve as one (names from lib/mcp/servers.ts, checked by the callers). */
  servers: readonly string[];
  readOnly?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A refusal at start: one line on stderr, and the process exits non-zero. */
export class StartupError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** What serving over stdio needs besides the transport: the server, and what ends with it. */
export interface StdioService {
  server: Server;
  /** Resolves once the caller is authenticated (rejects with why, when refused). */
  ready: Promise<unknown>;
  /** The client introduced itself (a local session row names it). */
  clientNamed?(name: string): Promise<void>;
  close?(): Promise<void>;
}

/**
 * Serves MCP servers over stdio as the user MANDATE_TOKEN belongs to: in this process on the
 * database (stdio-local.ts, loaded only then), or in remote mode (MANDATE_URL) through a Mandate
 * server's REST API, loading neither the registry nor the ORM. A refused token ends the process
 * with one clear line on stderr. Nothing but protocol messages ever goes to stdout (logs go to
 * stderr or MANDATE_LOG_FILE).
 */
export async function serveStdio(options: StdioOptions): Promise<void> {
  const label = `mandate ${options.servers.join('+')}`;
  const fail = (error: unknown): never => {
    const known = error instanceof StartupError || error instanceof ConfigError;
    process.stderr.write(`${label}: ${known ? (error as Error).message : `could not start: ${(error as Error)?.message ?? error}`}\n`);
    process.exit(error instanceof StartupError ? error.exitCode : error instanceof ConfigError ? 2 : 1);
  };
  const inFlight = new Set<Promise<unknown>>();
  let service: StdioService;
  try {
    const config = loadConfig(options.env ?? process.env);
    if (!config.token) {
      throw new StartupError('MANDATE_TOKEN is not set; give the server an API token (mandate token create, or create_my_token)', 2);
    }
    service = config.remoteUrl
      ? await serveRemote(config, config.remoteUrl, config.token, options, inFlight)
      : await (await import('./stdio-local.ts')).serveLocal(config, config.token, options, label, (backend) => trackCalls(backend, inFlight));
  } catch (error) {
    return fail(error);
  }
  service.ready.catch(fail);

  const { server, ready } = service;
  const transport = new StdioServerTransport();
  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    // A refused start exits through fail() with its own line and code, even if stdin closed first.
    if (!(await ready.then(() => true, () => false))) return;
    setTimeout(() => process.exit(1), FORCE_EXIT_MS).unref();
    // A client may close stdin with calls still running: let them finish (and answer) first.
    await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => setTimeout(resolve, DRAIN_MS).unref())]);
    try {
      await service.close?.();
    } finally {
      process.exit(0);
    }
  };
  // The session row names the client (e.g. "claude-code 2.1.0") once it has introduced itself.
  server.oninitialized = () => {
    const client = server.getClientVersion();
    if (!client || !service.clientNamed) return;
    const naming = ready.then(() => service.clientNamed!(`${client.name} ${client.version}`.slice(0, 200))).catch(() => undefined);
    inFlight.add(naming);
    void naming.finally(() => inFlight.delete(naming));
  };
  transport.onclose = () => void shutdown();
  process.stdin.on('end', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  await server.connect(transport);
}

/** Counts each call in flight, so a closing server lets it answer first. */
function trackCalls<T extends ServedTool>(backend: ToolBackend<T>, inFlight: Set<Promise<unknown>>): ToolBackend<T> {
  return {
    visible: (tools) => backend.visible(tools),
    refuse: (tool, args, error) => backend.refuse(tool, args, error),
    call(tool, args, report) {
      const running = backend.call(tool, args, report);
      inFlight.add(running);
      void running.finally(() => inFlight.delete(running));
      return running;
    },
  };
}

/**
 * Remote mode (MANDATE_URL): no database here. The server's catalog of the requested MCP servers
 * is what this one serves, and the token is checked by the server, both before the transport starts.
 */
async function serveRemote(config: Config, url: string, token: string, options: StdioOptions, inFlight: Set<Promise<unknown>>): Promise<StdioService> {
  const remote = new RemoteBackend(url, token);
  let catalog;
  try {
    [catalog] = await Promise.all([remote.catalog(options.servers, options.readOnly ?? false), remote.whoami()]);
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    throw new StartupError(
      error.code === 'unauthenticated' ? `MANDATE_TOKEN was refused by ${url}: ${error.message}` : error.message,
    );
  }
  const backend = trackCalls(remote, inFlight);
  const server = createMcpServer({ catalog: catalogFromJson(catalog), backend, ...(config.toolsWatchMs !== null ? { watchToolsMs: config.toolsWatchMs } : {}) });
  return { server, ready: Promise.resolve() };
}
