import type { OAuthSettings } from './oauth/settings.ts';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { openVault, type VaultSettings } from './vault.ts';
import { NETWORK_CLASSES, type NetworkClass } from './pm/net-guard.ts';
import type { PmSettings } from './pm/settings.ts';
import type { GatewaySettings } from './gateway/pool.ts';
import { parseToolsetList } from './pm/settings.ts';
import { parseTrustProxy, type TrustProxy } from './http/client-address.ts';

// The only reader of process.env: everything else receives a typed Config.
const envSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  MANDATE_DATA_DIR: z.string().min(1).default('./.mandate'),
  MANDATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  MANDATE_LOG_FILE: z.string().min(1).optional(),
  MANDATE_ADMIN_EMAIL: z.string().optional(),
  MANDATE_ADMIN_PASSWORD: z.string().optional(),
  MANDATE_TOKEN: z.string().optional(),
  // Remote mode: a stdio server with no database, forwarding every call to this Mandate.
  MANDATE_URL: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).optional(),
  // HTTP: the API token used when a request carries no credentials at all (a deployment's
  // service account), and a shared secret every /mcp and /api request must carry in X-MCP-Token.
  MANDATE_SERVICE_TOKEN: z.string().min(1).optional(),
  MANDATE_MCP_GUARD_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  // Behind reverse proxies: how many (a hop count; true = 1) or which addresses (comma-separated
  // IPs and CIDRs) to trust; the client is the right-most X-Forwarded-For entry not trusted.
  MANDATE_TRUST_PROXY: z.string().default('false'),
  // Browser origins allowed to call /mcp and /api besides this server's own (comma-separated).
  MANDATE_ALLOWED_ORIGINS: z.string().default(''),
  // The vault: `<key id>:<base64 of 32 bytes>` seals new secrets; older keys (comma-separated, same
  // form) still open what they sealed. Embedded data directories generate a key file if unset.
  MANDATE_VAULT_KEY: z.string().min(1).optional(),
  MANDATE_VAULT_PREVIOUS_KEYS: z.string().optional(),
  // PM trackers: address classes a deployment allows tracker URLs on (comma-separated: loopback,
  // private, link-local; default none), plain http:// (default https only), per-attempt timeout,
  // whole-call deadline, retries of 429/503/5xx, and whether delete_issue is offered at all.
  MANDATE_PM_ALLOW_NETWORKS: z
    .string()
    .regex(/^\s*((loopback|private|link-local)\s*(,\s*|$))*$/, 'must list loopback, private or link-local, comma-separated')
    .default(''),
  MANDATE_PM_ALLOW_HTTP: z.enum(['true', 'false']).default('false'),
  MANDATE_PM_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
  MANDATE_PM_DEADLINE_MS: z.coerce.number().int().min(100).max(600_000).default(45_000),
  // 0: a stdio server does not watch its caller's tool list (and does not offer listChanged).
  MANDATE_TOOLS_WATCH_MS: z.coerce.number({ message: 'must be a number of milliseconds' }).int('must be a whole number of milliseconds').refine((ms) => ms === 0 || (ms >= 100 && ms <= 3_600_000), 'must be 0 (off) or between 100 and 3600000 ms').default(2000),
  MANDATE_PM_MAX_RETRIES: z.coerce.number().int().min(0).max(10).default(3),
  MANDATE_PM_ALLOW_DELETE: z.enum(['true', 'false']).default('false'),
  // The PM toolsets this deployment serves (comma-separated; default all).
  MANDATE_PM_TOOLSETS: z.string().optional(),
  // The gateway to installed MCP servers: address classes and plain http:// allowed for remote
  // servers (as for trackers), idle time before a session closes, start and call timeouts, the
  // largest result passed on, stdio processes per user and in all, and how often running sessions
  // are checked against the database.
  MANDATE_GATEWAY_ALLOW_NETWORKS: z
    .string()
    .regex(/^\s*((loopback|private|link-local)\s*(,\s*|$))*$/, 'must list loopback, private or link-local, comma-separated')
    .default(''),
  MANDATE_GATEWAY_ALLOW_HTTP: z.enum(['true', 'false']).default('false'),
  MANDATE_GATEWAY_IDLE_SECONDS: z.coerce.number().min(0.05).max(86_400).default(300),
  MANDATE_GATEWAY_START_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(300).default(30),
  MANDATE_GATEWAY_CALL_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(3600).default(120),
  MANDATE_GATEWAY_MAX_RESULT_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024),
  MANDATE_GATEWAY_MAX_PROCESSES_PER_USER: z.coerce.number().int().min(1).max(1000).default(8),
  MANDATE_GATEWAY_MAX_PROCESSES: z.coerce.number().int().min(1).max(10_000).default(64),
  MANDATE_GATEWAY_SWEEP_SECONDS: z.coerce.number().min(0.05).max(3600).default(10),
  // Where users reach this deployment (OAuth redirect URIs and links in messages); default
  // http://HOST:PORT.
  MANDATE_PUBLIC_URL: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).optional(),
  // Jira Cloud OAuth 2.0 (3LO): the app's client id and secret from Atlassian's developer console,
  // the scopes asked for, and (tests, proxies) where Atlassian's authorization server and API are.
  MANDATE_JIRA_OAUTH_CLIENT_ID: z.string().trim().min(1).optional(),
  MANDATE_JIRA_OAUTH_CLIENT_SECRET: z.string().min(1).optional(),
  MANDATE_JIRA_OAUTH_SCOPES: z.string().trim().min(1).default('read:jira-work write:jira-work read:jira-user offline_access'),
  MANDATE_JIRA_OAUTH_AUTH_URL: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).default('https://auth.atlassian.com'),
  MANDATE_JIRA_OAUTH_API_URL: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).default('https://api.atlassian.com'),
  MANDATE_OAUTH_DCR: z.enum(['on', 'off']).default('on'),
  MANDATE_OAUTH_CIMD: z.enum(['on', 'off']).default('on'),
  MANDATE_OAUTH_CIMD_ALLOW_NETWORKS: z
    .string()
    .regex(/^\s*((loopback|private|link-local)\s*(,\s*|$))*$/, 'must list loopback, private or link-local, comma-separated')
    .default(''),
  MANDATE_OAUTH_DCR_PER_HOUR: z.coerce.number().int().min(1).max(100_000).default(20),
  MANDATE_OAUTH_ACCESS_TOKEN_SECONDS: z.coerce.number().int().min(60).max(86_400).default(3600),
  MANDATE_OAUTH_REFRESH_TOKEN_DAYS: z.coerce.number().int().min(1).max(365).default(30),
  MANDATE_OAUTH_GRANT_DAYS: z.coerce.number().int().min(1).max(365).default(90),
  // PostgreSQL: connections per process, and how long a call waits for one (connecting, or for a
  // free one from a busy pool) and for a statement before it is answered 503.
  MANDATE_DB_POOL_MAX: z.coerce.number({ message: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(10),
  MANDATE_DB_CONNECT_TIMEOUT_MS: z.coerce.number({ message: 'must be a number of milliseconds' }).int('must be a whole number of milliseconds').min(100, 'must be at least 100 ms').max(600_000, 'must be at most 600000 ms').default(5000),
  MANDATE_DB_QUERY_TIMEOUT_MS: z.coerce.number({ message: 'must be a number of milliseconds' }).int('must be a whole number of milliseconds').min(100, 'must be at least 100 ms').max(3_600_000, 'must be at most 3600000 ms').default(30_000),
  // Unset: the audit log is kept for good (a notice at start says how large it is).
  MANDATE_AUDIT_RETENTION_DAYS: z.coerce.number({ message: 'must be a whole number of days' }).int('must be a whole number of days').min(1, 'must be at least 1 day').max(36_500, 'must be at most 36500 days').optional(),
  // mandate serve on SIGTERM: how long calls in flight may finish before their connections close.
  MANDATE_DRAIN_SECONDS: z.coerce.number({ message: 'must be a whole number of seconds' }).int('must be a whole number of seconds').min(0, 'must be at least 0').max(3600, 'must be at most 3600 seconds').default(10),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
});

/** MANDATE_DATA_DIR=memory:// keeps the embedded database in memory (tests, benchmarks). */
export const IN_MEMORY = 'memory://';

export type DatabaseConfig =
  | { kind: 'embedded'; dataDir: string }
  | { kind: 'postgresql'; url: string; poolMax: number; connectTimeoutMs: number; queryTimeoutMs: number };

export interface Config {
  database: DatabaseConfig;
  /** level unset: each command picks its default (serve: info, one-shot CLI commands: warn). */
  log: { level?: string; file?: string };
  admin: { email?: string; password?: string };
  token?: string;
  /** Set: stdio servers forward every call to this Mandate's REST API instead of using a database. */
  remoteUrl?: string;
  http: { host: string; port: number; drainMs: number; serviceToken?: string; guardToken?: string; trustProxy: TrustProxy; allowedOrigins: string[] };
  vault: VaultSettings;
  pm: PmSettings;
  gateway: GatewaySettings;
  oauth: OAuthSettings;
  /** Days audit events are kept; null: for good. */
  auditRetentionDays: number | null;
  /** How often a stdio server checks whether its caller's tool list changed (null: it does not). */
  toolsWatchMs: number | null;
}

export class ConfigError extends Error {}

const networkClasses = (list: string): Set<NetworkClass> =>
  new Set(list.split(',').map((item) => item.trim()).filter((item): item is NetworkClass => (NETWORK_CLASSES as readonly string[]).includes(item)));

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`invalid environment variable ${String(issue.path[0])}: ${issue.message}`);
  }
  const e = parsed.data;
  if (Boolean(e.MANDATE_JIRA_OAUTH_CLIENT_ID) !== Boolean(e.MANDATE_JIRA_OAUTH_CLIENT_SECRET)) {
    const missing = e.MANDATE_JIRA_OAUTH_CLIENT_ID ? 'MANDATE_JIRA_OAUTH_CLIENT_SECRET' : 'MANDATE_JIRA_OAUTH_CLIENT_ID';
    throw new ConfigError(`invalid environment variable ${missing}: Jira Cloud OAuth needs both the client id and the client secret`);
  }
  const publicUrl = (e.MANDATE_PUBLIC_URL ?? `http://${e.HOST.includes(':') ? `[${e.HOST}]` : e.HOST}:${e.PORT}`).replace(/\/+$/, '');
  return {
    database: e.DATABASE_URL
      ? { kind: 'postgresql', url: e.DATABASE_URL, poolMax: e.MANDATE_DB_POOL_MAX, connectTimeoutMs: e.MANDATE_DB_CONNECT_TIMEOUT_MS, queryTimeoutMs: e.MANDATE_DB_QUERY_TIMEOUT_MS }
      : { kind: 'embedded', dataDir: e.MANDATE_DATA_DIR === IN_MEMORY ? IN_MEMORY : resolve(e.MANDATE_DATA_DIR) },
    log: { ...(e.MANDATE_LOG_LEVEL ? { level: e.MANDATE_LOG_LEVEL } : {}), ...(e.MANDATE_LOG_FILE ? { file: e.MANDATE_LOG_FILE } : {}) },
    admin: { email: e.MANDATE_ADMIN_EMAIL, password: e.MANDATE_ADMIN_PASSWORD },
    token: e.MANDATE_TOKEN,
    ...(e.MANDATE_URL ? { remoteUrl: e.MANDATE_URL.replace(/\/+$/, '') } : {}),
    toolsWatchMs: e.MANDATE_TOOLS_WATCH_MS === 0 ? null : e.MANDATE_TOOLS_WATCH_MS,
    http: {
      host: e.HOST,
      port: e.PORT,
      drainMs: e.MANDATE_DRAIN_SECONDS * 1000,
      ...(e.MANDATE_SERVICE_TOKEN ? { serviceToken: e.MANDATE_SERVICE_TOKEN } : {}),
      ...(e.MANDATE_MCP_GUARD_TOKEN ? { guardToken: e.MANDATE_MCP_GUARD_TOKEN } : {}),
      trustProxy: trustProxy(e.MANDATE_TRUST_PROXY),
      allowedOrigins: allowedOrigins(e.MANDATE_ALLOWED_ORIGINS),
    },
    oauth: {
      enabled: e.MANDATE_PUBLIC_URL !== undefined,
      issuer: publicUrl,
      dynamicRegistration: e.MANDATE_OAUTH_DCR === 'on',
      clientMetadataDocuments: e.MANDATE_OAUTH_CIMD === 'on',
      metadataNetworks: networkClasses(e.MANDATE_OAUTH_CIMD_ALLOW_NETWORKS),
      registrationsPerHour: e.MANDATE_OAUTH_DCR_PER_HOUR,
      accessTokenSeconds: e.MANDATE_OAUTH_ACCESS_TOKEN_SECONDS,
      refreshTokenSeconds: e.MANDATE_OAUTH_REFRESH_TOKEN_DAYS * 86_400,
      grantSeconds: e.MANDATE_OAUTH_GRANT_DAYS * 86_400,
      unusedClientSeconds: 86_400,
    },
    auditRetentionDays: e.MANDATE_AUDIT_RETENTION_DAYS ?? null,
    gateway: {
      policy: { allow: networkClasses(e.MANDATE_GATEWAY_ALLOW_NETWORKS), allowHttp: e.MANDATE_GATEWAY_ALLOW_HTTP === 'true' },
      idleMs: Math.round(e.MANDATE_GATEWAY_IDLE_SECONDS * 1000),
      startTimeoutMs: Math.round(e.MANDATE_GATEWAY_START_TIMEOUT_SECONDS * 1000),
      callTimeoutMs: Math.round(e.MANDATE_GATEWAY_CALL_TIMEOUT_SECONDS * 1000),
      maxResultBytes: e.MANDATE_GATEWAY_MAX_RESULT_BYTES,
      maxProcessesPerUser: e.MANDATE_GATEWAY_MAX_PROCESSES_PER_USER,
      maxProcesses: e.MANDATE_GATEWAY_MAX_PROCESSES,
      sweepMs: Math.round(e.MANDATE_GATEWAY_SWEEP_SECONDS * 1000),
    },
    vault: vaultSettings(e.MANDATE_VAULT_KEY, e.MANDATE_VAULT_PREVIOUS_KEYS, e.DATABASE_URL ? undefined : e.MANDATE_DATA_DIR),
    pm: {
      http: {
        policy: {
          allow: networkClasses(e.MANDATE_PM_ALLOW_NETWORKS),
          allowHttp: e.MANDATE_PM_ALLOW_HTTP === 'true',
        },
        timeoutMs: e.MANDATE_PM_TIMEOUT_MS,
        deadlineMs: e.MANDATE_PM_DEADLINE_MS,
        maxRetries: e.MANDATE_PM_MAX_RETRIES,
      },
      allowDelete: e.MANDATE_PM_ALLOW_DELETE === 'true',
      toolsets: pmToolsets(e.MANDATE_PM_TOOLSETS),
      publicUrl,
      ...(e.MANDATE_JIRA_OAUTH_CLIENT_ID && e.MANDATE_JIRA_OAUTH_CLIENT_SECRET
        ? {
            jiraOAuth: {
              clientId: e.MANDATE_JIRA_OAUTH_CLIENT_ID,
              clientSecret: e.MANDATE_JIRA_OAUTH_CLIENT_SECRET,
              scopes: e.MANDATE_JIRA_OAUTH_SCOPES.split(/[\s,]+/).filter(Boolean),
              authUrl: e.MANDATE_JIRA_OAUTH_AUTH_URL.replace(/\/+$/, ''),
              apiUrl: e.MANDATE_JIRA_OAUTH_API_URL.replace(/\/+$/, ''),
            },
          }
        : {}),
    },
  };
}

function vaultSettings(key: string | undefined, previousKeys: string | undefined, dataDir: string | undefined): VaultSettings {
  // Checked here, so a malformed key stops the process at start with the variable's name.
  try {
    openVault({ key, previousKeys, ephemeral: true });
  } catch (error) {
    throw new ConfigError(`invalid environment variable ${(error as Error).message}`);
  }
  return {
    key,
    previousKeys,
    ...(dataDir === IN_MEMORY ? { ephemeral: true } : dataDir !== undefined ? { keyFile: join(resolve(dataDir), 'vault.key') } : {}),
  };
}

function trustProxy(raw: string): TrustProxy {
  try {
    return parseTrustProxy(raw);
  } catch (error) {
    throw new ConfigError(`invalid environment variable MANDATE_TRUST_PROXY: ${(error as Error).message} (give false, true, a hop count, or trusted proxy addresses)`);
  }
}

function allowedOrigins(raw: string): string[] {
  return raw
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      let url: URL | undefined;
      try {
        url = new URL(item);
      } catch {
        url = undefined;
      }
      if (!url || !/^https?:$/.test(url.protocol) || url.origin !== item.replace(/\/+$/, '')) {
        throw new ConfigError(`invalid environment variable MANDATE_ALLOWED_ORIGINS: "${item}" is not an origin such as https://app.example.com`);
      }
      return url.origin;
    });
}

function pmToolsets(raw: string | undefined) {
  try {
    return parseToolsetList(raw, 'MANDATE_PM_TOOLSETS');
  } catch (error) {
    throw new ConfigError(`invalid environment variable ${(error as Error).message}`);
  }
}

/** A description of where the data lives that never includes a password from DATABASE_URL. */
export function describeDatabase(db: DatabaseConfig): string {
  if (db.kind === 'embedded') return `embedded PGlite in ${db.dataDir}`;
  const url = new URL(db.url);
  return `PostgreSQL at ${url.hostname}:${url.port || 5432}${url.pathname}`;
}
