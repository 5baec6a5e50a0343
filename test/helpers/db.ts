import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig, type Config } from '../../lib/config.ts';
import { IN_MEMORY } from '../../lib/db/orm.ts';
import { createLogger } from '../../lib/log.ts';
import { openRuntime, type Runtime } from '../../lib/runtime.ts';
import { startCluster, type Cluster } from './pg-cluster.ts';

// Which database the suite runs on: MANDATE_TEST_DB=pglite (default) or postgres. On postgres,
// MANDATE_TEST_PG_URL names the cluster scripts/test.js started; a file run on its own starts one.
export const TEST_DB: 'pglite' | 'postgres' = process.env.MANDATE_TEST_DB === 'postgres' ? 'postgres' : 'pglite';
const ARTIFACTS = process.env.MANDATE_TEST_ARTIFACTS;

let ownCluster: Promise<Cluster> | undefined;

/** The admin URL of a real PostgreSQL cluster (the harness's, or one started for this process). */
export async function clusterUrl(): Promise<string> {
  if (process.env.MANDATE_TEST_PG_URL) return process.env.MANDATE_TEST_PG_URL;
  ownCluster ??= startCluster().then((cluster) => {
    process.on('exit', () => cluster.stop());
    return cluster;
  });
  return (await ownCluster).url;
}

/** A fresh, empty database on the cluster; returns its URL. */
export async function createPostgresDatabase(): Promise<string> {
  const admin = await clusterUrl();
  const name = `mandate_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh vault key line; its key material is a recorded secret (the sweep looks for it). */
export function testVaultKey(id = 'test'): string {
  const key = randomBytes(32).toString('base64');
  recordSecret(key);
  return `${id}:${key}`;
}

/** Config for a fresh database of the kind this pass tests. */
export async function freshDatabaseConfig(overrides: Record<string, string> = {}): Promise<Config> {
  const env: Record<string, string> = { MANDATE_LOG_LEVEL: 'info', MANDATE_VAULT_KEY: testVaultKey(), ...overrides };
  if (TEST_DB === 'postgres') env.DATABASE_URL = await createPostgresDatabase();
  else env.MANDATE_DATA_DIR = IN_MEMORY;
  return loadConfig(env);
}

/** Every secret a test used; the suite's final sweep looks for each in all logs and audit rows. */
export function recordSecret(secret: string): string {
  if (ARTIFACTS) {
    mkdirSync(ARTIFACTS, { recursive: true });
    appendFileSync(join(ARTIFACTS, 'secrets.txt'), `${secret}\n`);
  }
  localSecrets.add(secret);
  return secret;
}
const localSecrets = new Set<string>();

/** Keeps output a test produced (logs, CLI output) for the final sweep. */
export function keepArtifact(kind: string, text: string): void {
  if (!ARTIFACTS || !text) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  appendFileSync(join(ARTIFACTS, `${kind}-${process.pid}.log`), text.endsWith('\n') ? text : `${text}\n`);
}

export interface TestRuntime extends Runtime {
  logs: string[];
  config: Config;
  /** Audit rows as JSON text. */
  auditRows(): Promise<Record<string, unknown>[]>;
}

/** A runtime on a fresh database, logging into memory; close() checks that no secret leaked. */
export async function testRuntime(options: { now?: () => Date; env?: Record<string, string>; sleep?: (ms: number) => Promise<unknown> } = {}): Promise<TestRuntime> {
  const config = await freshDatabaseConfig(options.env);
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const runtime = await openRuntime(config, {
    command: 'test',
    log: createLogger({ level: 'debug', stream }),
    ...(options.now ? { now: options.now } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  const auditRows = async () => {
    await runtime.runner.audit.flush();
    return (await runtime.db.orm.em.fork().execute('select * from audit_event order by at')) as Record<string, unknown>[];
  };
  return {
    ...runtime,
    logs,
    config,
    auditRows,
    async close() {
      const audit = JSON.stringify(await auditRows());
      const log = logs.join('');
      keepArtifact('audit', audit);
      keepArtifact('log', log);
      await runtime.close();
      for (const secret of localSecrets) {
        if (audit.includes(secret) || log.includes(secret)) throw new Error('a secret used by this test appears in the audit log or the logs');
      }
    },
  };
}
