import type { Config } from '../config.ts';
import { EmbeddedDatabaseBusyError } from '../db/embedded-lock.ts';
import { OpError } from '../errors.ts';
import { authenticateEnvToken } from '../identity/authenticate.ts';
import type { UserCaller } from '../identity/caller.ts';
import { endSession, nameSessionClient, startSession } from '../identity/sessions.ts';
import type { AnyOperation } from '../ops/operation.ts';
import { servedBy } from '../pm/settings.ts';
import { openRuntime, startAgentSessionSweep, startGatewaySweep, startAuditMaintenance, type Runtime } from '../runtime.ts';
import { localBackend, type ToolBackend } from './backend.ts';
import { localCatalog } from './local-catalog.ts';
import { createMcpServer } from './server.ts';
import { SERVERS } from './servers.ts';
import { StartupError, type StdioOptions, type StdioService } from './stdio.ts';

// A stdio server maintains the audit log only once it has been up a minute: start-up comes first,
// and a process that lives for one call leaves it to the longer-lived ones.
const STDIO_MAINTENANCE_DELAY_MS = 60_000;

/**
 * A stdio server on the database, in this process. The transport starts at once so the client's
 * initialize is answered while the database opens; every tool request waits for the token check.
 */
export async function serveLocal(
  config: Config,
  token: string,
  options: StdioOptions,
  label: string,
  track: (backend: ToolBackend<AnyOperation>) => ToolBackend<AnyOperation>,
): Promise<StdioService> {
  let runtime: Runtime | undefined;
  let sessionId: string | undefined;
  const ready = (async () => {
    runtime = await openRuntime(config, { command: label, defaultLogLevel: 'warn' }).catch((error: unknown) => {
      // Another process holds the data directory: its line names the holder, as it is.
      throw error instanceof EmbeddedDatabaseBusyError ? new StartupError(error.message) : error;
    });
    const caller = await authenticate(runtime, token);
    const bound = await startSession(runtime.db.orm.em.fork(), caller, { transport: 'stdio', servers: [...options.servers] });
    sessionId = bound.sessionId;
    startAgentSessionSweep(runtime);
    startGatewaySweep(runtime);
    startAuditMaintenance(runtime, config.auditRetentionDays, STDIO_MAINTENANCE_DELAY_MS);
    return track(localBackend(runtime, bound));
  })();
  const catalog = localCatalog(options.servers.map((name) => SERVERS[name]!), options.readOnly ?? false, servedBy(config.pm));
  const server = createMcpServer({ catalog, ready, ...(config.toolsWatchMs !== null ? { watchToolsMs: config.toolsWatchMs } : {}) });
  return {
    server,
    ready,
    async clientNamed(name) {
      if (runtime && sessionId) await nameSessionClient(runtime.db.orm.em.fork(), sessionId, name);
    },
    async close() {
      if (runtime && sessionId) await endSession(runtime.db.orm.em.fork(), sessionId, 'closed');
      await runtime?.close();
    },
  };
}

async function authenticate(runtime: Runtime, token: string): Promise<UserCaller> {
  try {
    return await authenticateEnvToken(runtime.db.orm.em.fork(), token);
  } catch (error) {
    if (!(error instanceof OpError)) throw error;
    throw new StartupError(`${error.message}; create a new one (mandate token create, or create_my_token)`);
  }
}
