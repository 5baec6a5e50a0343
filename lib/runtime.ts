import type { Config } from './config.ts';
import { lazyFork, openDatabase, type Database, type Em } from './db/orm.ts';
import { AccessChanges } from './access/changes.ts';
import { PermissionResolver } from './access/resolver.ts';
import { OperationRunner } from './ops/runner.ts';
import { createLogger, type Logger } from './log.ts';
import { endExpiredAgentSessions } from './identity/account-lifecycle.ts';
import { maintainAuditPartitions } from './audit/partitions.ts';
import { openVault, vaultKeyTexts, type Vault } from './vault.ts';
import { registerDeploymentSecrets } from './redact.ts';
import { PmService } from './pm/service.ts';
import { guardedFetch } from './pm/guarded-fetch.ts';
import { UpstreamHttp } from './pm/http.ts';
import type { OAuthServer } from './oauth/server.ts';
import { GatewayPool } from './gateway/pool.ts';
import { staleSessions } from './ops/gateway/sweep.ts';

/** Everything a process needs to run operations: database, resolver, runner, logger. */
export interface Runtime {
  db: Database;
  /** A unit of work for one request, forked from the ORM only if something asks for it. */
  scope(): () => Em;
  /** Whether the database answers. */
  ready(): Promise<boolean>;
  resolver: PermissionResolver;
  runner: OperationRunner;
  vault: Vault;
  pm: PmService;
  /** Sessions with installed MCP servers, for the gateway's tools. */
  gateway: GatewayPool;
  /** The OAuth authorization server of the MCP endpoints; null until MANDATE_PUBLIC_URL is set. */
  oauth: OAuthServer | null;
  log: Logger;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  command: string;
  log?: Logger;
  now?: () => Date;
  migrate?: boolean;
  /** Log level when MANDATE_LOG_LEVEL is not set. */
  defaultLogLevel?: string;
  /** How PM retries wait (tests record the waits instead). */
  sleep?: (ms: number) => Promise<unknown>;
  /** Sees every SQL statement the ORM sends (tests read the queries behind a call). */
  onQuery?: (sql: string) => void;
}

export async function openRuntime(config: Config, options: RuntimeOptions): Promise<Runtime> {
  const log = options.log ?? createLogger({ ...config.log, level: config.log.level ?? options.defaultLogLevel ?? 'info' });
  const db = await openDatabase(config.database, { command: options.command, migrate: options.migrate ?? true, ...(options.onQuery ? { onQuery: options.onQuery } : {}) });
  const now = options.now ?? (() => new Date());
  const resolver = new PermissionResolver(new AccessChanges(db.changeReader, db.localFeed), now);
  let vault: Vault;
  try {
    vault = openVault(config.vault);
  } catch (error) {
    await db.close();
    throw error;
  }
  registerDeploymentSecrets([
    ...vaultKeyTexts(vault),
    config.http.serviceToken,
    config.http.guardToken,
    config.pm.jiraOAuth?.clientSecret,
    config.database.kind === 'postgresql' ? decodeURIComponent(new URL(config.database.url).password) : undefined,
  ]);
  const pm = new PmService(config.pm, { lockRows: db.kind === 'postgresql', ...(options.sleep ? { sleep: options.sleep } : {}) });
  // An audit insert gets a pool connection and runs: twice the connect deadline, within the statement one.
  const auditDeadlineMs = config.database.kind === 'postgresql' ? Math.min(config.database.queryTimeoutMs, 2 * config.database.connectTimeoutMs) : undefined;
  const gateway = new GatewayPool(config.gateway, log);
  const runner = new OperationRunner({ orm: db.orm, resolver, vault, pm, gateway, log, now, ...(auditDeadlineMs ? { auditDeadlineMs } : {}) });
  // Client metadata documents come through a client of their own: public addresses only (unless
  // configured), no retries, small answers, within the library's 2.5 s.
  const metadataHttp = config.oauth.enabled
    ? new UpstreamHttp({ policy: { allow: config.oauth.metadataNetworks, allowHttp: false }, timeoutMs: 2500, deadlineMs: 2500, maxRetries: 0, maxBodyBytes: 64 * 1024 })
    : null;
  // Loaded only when used: the library's import alone costs a stdio server's start-up dearly.
  const oauth = metadataHttp
    ? new (await import('./oauth/server.ts')).OAuthServer(db.orm, config.oauth, {
        vault,
        audit: (record) => runner.audit.enqueue(record),
        log,
        fetch: guardedFetch(metadataHttp),
      })
    : null;
  const close = async () => {
    await gateway.close();
    await runner.audit.close();
    pm.close();
    metadataHttp?.close();
    await db.close();
  };
  const scope = () => lazyFork(db.orm);
  const ready = () => db.orm.em.fork().execute('select 1 as ok', [], 'get').then(() => true, () => false);
  return { db, scope, ready, resolver, runner, vault, pm, gateway, oauth, log, close };
}

const AGENT_SWEEP_INTERVAL_MS = 60_000;

/**
 * Long-running processes end expired agent sessions every minute. Their tokens are refused from
 * the moment they expire; the sweep also revokes what they were given and deactivates the agent,
 * as ending them by hand does.
 */
export function startAgentSessionSweep(runtime: Runtime): void {
  const sweep = () =>
    endExpiredAgentSessions(runtime.db.orm.em.fork(), new Date()).catch((error: unknown) => {
      runtime.log.warn({ err: { message: (error as Error).message } }, 'agent session sweep failed');
    });
  void sweep();
  setInterval(sweep, AGENT_SWEEP_INTERVAL_MS).unref();
}

/**
 * Long-running processes check their gateway sessions against the database (MANDATE_GATEWAY_SWEEP_SECONDS):
 * a removed or changed installation, or a deactivated user, stops its processes even when another
 * process made the change.
 */
export function startGatewaySweep(runtime: Runtime): void {
  runtime.gateway.startSweep((sessions) => staleSessions(runtime.db.orm.em.fork(), sessions));
}

const AUDIT_MAINTENANCE_INTERVAL_MS = 6 * 3_600_000;

/**
 * Long-running processes keep the audit log's monthly partitions made ahead and apply
 * MANDATE_AUDIT_RETENTION_DAYS: at start (`delayMs` later: a stdio server's start-up is not held
 * up) and every six hours. A failure is logged and retried at the next run.
 */
export function startAuditMaintenance(runtime: Runtime, retentionDays: number | null, delayMs = 0): void {
  const run = () =>
    maintainAuditPartitions(runtime.db.orm.em.fork(), new Date(), retentionDays).then(
      (done) => {
        if (done.created.length || done.dropped.length || done.deleted) runtime.log.info({ ...done, retentionDays }, 'audit log maintained');
      },
      (error: unknown) => runtime.log.warn({ err: { message: (error as Error).message } }, 'audit maintenance failed'),
    );
  setTimeout(() => void run(), delayMs).unref();
  setInterval(run, AUDIT_MAINTENANCE_INTERVAL_MS).unref();
}

const OAUTH_SWEEP_INTERVAL_MS = 3_600_000;

/**
 * Long-running processes remove, every hour, OAuth client registrations that never obtained a
 * grant (older than a day) and the authorization server's records past their expiry.
 */
export function startOAuthSweep(runtime: Runtime): void {
  const oauth = runtime.oauth;
  if (!oauth) return;
  const sweep = () =>
    oauth.sweep().catch((error: unknown) => {
      runtime.log.warn({ err: { message: (error as Error).message } }, 'OAuth sweep failed');
    });
  void sweep();
  setInterval(sweep, OAUTH_SWEEP_INTERVAL_MS).unref();
}
