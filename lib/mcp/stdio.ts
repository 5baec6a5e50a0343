import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { ConfigError, loadConfig } from '../config.ts';
import { EmbeddedDatabaseBusyError } from '../db/embedded-lock.ts';
import { OpError } from '../errors.ts';
import { authenticateEnvToken } from '../identity/authenticate.ts';
import type { UserCaller } from '../identity/caller.ts';
import { endSession, nameSessionClient, startSession } from '../identity/sessions.ts';
import { openRuntime, startAgentSessionSweep, startGatewaySweep, startAuditMaintenance, type Runtime } from '../runtime.ts';
import { localBackend, type ToolBackend } from './backend.ts';
import { RemoteBackend } from './remote.ts';
import { createMcpServer } from './server.ts';
import { servedBy } from '../pm/settings.ts';
import type { Toolset } from './toolset.ts';

// A stdio server maintains the audit log only once it has been up a minute: start-up comes first,
// and a process that lives for one call leaves it to the longer-lived ones.
const STDIO_MAINTENANCE_DELAY_MS = 60_000;

/** How long a closing server lets calls in flight finish, and the point where it exits regardless. */
const DRAIN_MS = 5_000;
const FORCE_EXIT_MS = 10_000;

export interface StdioOptions {
  toolsets: readonly Toolset[];
  readOnly?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A refusal at start: one line on stderr, and the process exits non-zero. */
class StartupError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/**
 * Serves toolsets over stdio as the user MANDATE_TOKEN belongs to. The transport starts at once so
 * the client's initialize is answered while the database opens; every tool request waits for the
 * token check, and a refused token ends the process with one clear line on stderr. Nothing but
 * protocol messages ever goes to stdout (logs go to stderr or MANDATE_LOG_FILE).
 */
export async function serveStdio(options: StdioOptions): Promise<void> {
  const label = `mandate ${options.toolsets.map((t) => t.name).join('+')}`;
  const fail = (error: unknown): never => {
    const known = error instanceof StartupError || error instanceof ConfigError || error instanceof EmbeddedDatabaseBusyError;
    process.stderr.write(`${label}: ${known ? (error as Error).message : `could not start: ${(error as Error)?.message ?? error}`}\n`);
    process.exit(error instanceof StartupError ? error.exitCode : error instanceof ConfigError ? 2 : 1);
  };

  let runtime: Runtime | undefined;
  let sessionId: string | undefined;
  const inFlight = new Set<Promise<unknown>>();
  const ready = (async (): Promise<ToolBackend> => {
    const config = loadConfig(options.env ?? process.env);
    if (!config.token) {
      throw new StartupError('MANDATE_TOKEN is not set; give the server an API token (mandate token create, or create_my_token)', 2);
    }
    if (config.remoteUrl) return trackCalls(await connectRemote(config.remoteUrl, config.token), inFlight);
    runtime = await openRuntime(config, { command: label, defaultLogLevel: 'warn' });
    const caller = await authenticate(runtime, config.token);
    const bound = await startSession(runtime.db.orm.em.fork(), caller, { transport: 'stdio', servers: options.toolsets.map((t) => t.name) });
    sessionId = bound.sessionId;
    startAgentSessionSweep(runtime);
    startGatewaySweep(runtime);
    startAuditMaintenance(runtime, config.auditRetentionDays, STDIO_MAINTENANCE_DELAY_MS);
    return trackCalls(localBackend(runtime, bound), inFlight);
  })();
  ready.catch(fail);

  const { serves, watchToolsMs } = serverSettings(options.env ?? process.env);
  const server = createMcpServer({ toolsets: options.toolsets, readOnly: options.readOnly ?? false, ready, serves, ...(watchToolsMs !== null ? { watchToolsMs } : {}) });
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
      if (runtime && sessionId) {
        await endSession(runtime.db.orm.em.fork(), sessionId, 'closed');
      }
      await runtime?.close();
    } finally {
      process.exit(0);
    }
  };
  // The session row names the client (e.g. "claude-code 2.1.0") once it has introduced itself.
  server.oninitialized = () => {
    const client = server.getClientVersion();
    if (!client) return;
    const naming = ready
      .then(async () => {
        if (runtime && sessionId) await nameSessionClient(runtime.db.orm.em.fork(), sessionId, `${client.name} ${client.version}`.slice(0, 200));
      })
      .catch(() => undefined);
    inFlight.add(naming);
    void naming.finally(() => inFlight.delete(naming));
  };
  transport.onclose = () => void shutdown();
  process.stdin.on('end', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
  await server.connect(transport);
}

function trackCalls(backend: ToolBackend, inFlight: Set<Promise<unknown>>): ToolBackend {
  return {
    visible: (operations) => backend.visible(operations),
    refuse: (op, args, error) => backend.refuse(op, args, error),
    call(op, args, report) {
      const running = backend.call(op, args, report);
      inFlight.add(running);
      void running.finally(() => inFlight.delete(running));
      return running;
    },
  };
}

/** Remote mode (MANDATE_URL): no database here; the token is checked by the server at start. */
async function connectRemote(url: string, token: string): Promise<ToolBackend> {
  const remote = new RemoteBackend(url, token);
  try {
    await remote.whoami();
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    throw new StartupError(
      error.code === 'unauthenticated' ? `MANDATE_TOKEN was refused by ${url}: ${error.message}` : error.message,
    );
  }
  return remote;
}

async function authenticate(runtime: Runtime, token: string): Promise<UserCaller> {
  try {
    return await authenticateEnvToken(runtime.db.orm.em.fork(), token);
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    throw new StartupError(`${error.message}; create a new one (mandate token create, or create_my_token)`);
  }
}

/**
 * The deployment's PM toolset choice and tool-list watch; a bad configuration is reported by the
 * start-up itself (ready), so until then the defaults.
 */
function serverSettings(env: NodeJS.ProcessEnv): { serves: ReturnType<typeof servedBy>; watchToolsMs: number | null } {
  try {
    const config = loadConfig(env);
    return { serves: servedBy(config.pm), watchToolsMs: config.toolsWatchMs };
  } catch {
    return { serves: () => true, watchToolsMs: 2000 };
  }
}
