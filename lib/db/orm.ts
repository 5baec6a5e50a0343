import { join } from 'node:path';
import type { MikroORM, Options } from '@mikro-orm/core';
import type { AbstractSqlDriver, EntityManager } from '@mikro-orm/sql';
import { Migrator } from '@mikro-orm/migrations';
import { IN_MEMORY, type DatabaseConfig } from '../config.ts';
import { ALL_ENTITIES } from './entities/index.ts';
import { ACCESS_CHANGE_CHANNEL, ACCESS_ROUTINES, NOTIFY_ACCESS_CHANGES_SETTING } from './entities/access-change.ts';
import { MIGRATIONS } from './migrations/index.ts';
import { dedicatedChangeReader, type ChangeReader, type LocalFeed } from './change-reader.ts';
import { acquireEmbeddedLock, type EmbeddedLock } from './embedded-lock.ts';

export type Orm = MikroORM<AbstractSqlDriver, EntityManager>;
export type Em = EntityManager;

/**
 * An entity manager, or the way to one when it is needed. A request whose checks all hit caches
 * never touches the database through the ORM, and each MikroORM fork costs (a new unit of work,
 * and two process.env writes), so the HTTP hot path forks only on a cache miss.
 */
export type EmSource = Em | (() => Em);

export const emOf = (source: EmSource): Em => (typeof source === 'function' ? source() : source);

/** Forks on first use, then gives that same fork. */
export function lazyFork(orm: Orm): () => Em {
  let em: Em | undefined;
  return () => (em ??= orm.em.fork());
}

export interface Database {
  orm: Orm;
  kind: DatabaseConfig['kind'];
  /** PostgreSQL: the access-change feed's own connection (see change-reader.ts). */
  changeReader?: ChangeReader;
  /** Embedded: the feed this process alone appends to, and hears of (see change-reader.ts). */
  localFeed?: LocalFeed;
  /** Applies the committed migrations that have not run yet; returns their names. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export { IN_MEMORY };

function baseOptions(options: OpenOptions): Partial<Options> {
  return {
    ...(options.onQuery ? { debug: ['query', 'query-params'], colors: false, logger: options.onQuery } : { debug: false }),
    entities: ALL_ENTITIES,
    routines: ACCESS_ROUTINES,
    extensions: [Migrator],
    migrations: {
      migrationsList: MIGRATIONS,
      tableName: 'mandate_migrations',
      silent: true,
      snapshot: false,
      snapshotOnMigrate: false,
      transactional: true,
      allOrNothing: true,
    },
    // Each request works on its own fork; the global context is never used implicitly.
    allowGlobalContext: false,
    // Timestamps are written and read as UTC whatever the server's time zone.
    forceUtcTimezone: true,
  };
}

export interface OpenOptions {
  /** Names the holder in the embedded lock ("mandate serve", "servers/core"...). */
  command: string;
  /** Apply pending migrations before returning (the default at start). */
  migrate?: boolean;
  poolMax?: number;
  /** Sees every SQL statement (tests count queries with it). */
  onQuery?: (sql: string) => void;
}

/**
 * The options the MikroORM CLI opens Mandate's database with (mikro-orm.config.ts): the same
 * entities, migrations and settings as the servers, for the database the environment names. The
 * embedded data directory is claimed for the CLI process, as every other process claims it.
 */
export async function cliOptions(config: DatabaseConfig): Promise<Options> {
  const options = { command: 'mikro-orm CLI' };
  if (config.kind === 'postgresql') {
    const { defineConfig } = await import('@mikro-orm/postgresql');
    return defineConfig({ ...baseOptions(options), clientUrl: config.url } as never) as unknown as Options;
  }
  const inMemory = config.dataDir === IN_MEMORY;
  if (!inMemory) {
    const lock = acquireEmbeddedLock(config.dataDir, options.command);
    process.once('exit', () => lock.release());
  }
  const { defineConfig } = await import('@mikro-orm/pglite');
  return defineConfig({ ...baseOptions(options), ...(await embeddedOptions()), dbName: inMemory ? IN_MEMORY : join(config.dataDir, 'pgdata') } as never) as unknown as Options;
}

/** PGlite carries PostgreSQL's contrib extensions as modules of its own: the ones the migrations create. */
async function embeddedOptions() {
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm');
  return { driverOptions: { extensions: { pg_trgm } } };
}

export async function openDatabase(config: DatabaseConfig, options: OpenOptions): Promise<Database> {
  let lock: EmbeddedLock | undefined;
  let orm: Orm;
  let changeReader: ChangeReader | undefined;
  let localFeed: LocalFeed | undefined;
  if (config.kind === 'embedded') {
    const inMemory = config.dataDir === IN_MEMORY;
    if (!inMemory) lock = acquireEmbeddedLock(config.dataDir, options.command);
    try {
      const { MikroORM: PgliteOrm } = await import('@mikro-orm/pglite');
      orm = (await PgliteOrm.init({
        ...baseOptions(options),
        ...(await embeddedOptions()),
        dbName: inMemory ? IN_MEMORY : join(config.dataDir, 'pgdata'),
      } as Options as never)) as unknown as Orm;
      localFeed = await listenToFeed(orm);
    } catch (error) {
      lock?.release();
      throw error;
    }
  } else {
    const { MikroORM: PgOrm } = await import('@mikro-orm/postgresql');
    orm = (await PgOrm.init({
      ...baseOptions(options),
      clientUrl: config.url,
      pool: { min: 0, max: options.poolMax ?? config.poolMax },
      // No call waits for ever: for a connection (the database away, or the pool busy) or a statement.
      driverOptions: { connectionTimeoutMillis: config.connectTimeoutMs, query_timeout: config.queryTimeoutMs },
    } as Options as never)) as unknown as Orm;
    // The access-change read is a trivial query: one slower than the connect deadline means the
    // database is in trouble, and the read falls back to the pool, so it gets that deadline.
    changeReader = dedicatedChangeReader(config.url, { connectTimeoutMs: config.connectTimeoutMs, queryTimeoutMs: Math.min(config.connectTimeoutMs, config.queryTimeoutMs) });
  }
  const db: Database = {
    orm,
    kind: config.kind,
    ...(changeReader ? { changeReader } : {}),
    ...(localFeed ? { localFeed } : {}),
    async migrate() {
      const applied = await orm.migrator.up();
      return applied.map((m) => m.name);
    },
    async close() {
      try {
        await changeReader?.close();
        await orm.close(true);
      } finally {
        lock?.release();
      }
    },
  };
  if (options.migrate !== false) {
    try {
      // One query when every migration has run (each start of a stdio server); the migrator otherwise.
      if (!(await schemaIsCurrent(orm))) await db.migrate();
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  return db;
}

/**
 * Has PGlite's one session notify every append to the access-change feed, and counts them. Set
 * before anything else runs here, so no change can commit unheard; PGlite delivers a notification
 * while it reads the committing statement's answer, before that statement's caller resumes.
 */
async function listenToFeed(orm: Orm): Promise<LocalFeed> {
  const pglite = await (orm.em.getConnection() as unknown as { getNativeClient(): Promise<PGliteLike> }).getNativeClient();
  const feed = { heard: 0 };
  await pglite.query(`set ${NOTIFY_ACCESS_CHANGES_SETTING} = 'on'`);
  await pglite.listen(ACCESS_CHANGE_CHANNEL, () => {
    feed.heard++;
  });
  return feed;
}

interface PGliteLike {
  query(sql: string): Promise<unknown>;
  listen(channel: string, callback: (payload: string) => void): Promise<unknown>;
}

/** Whether every committed migration has run on this database (false when it was never migrated). */
export async function schemaIsCurrent(orm: Orm): Promise<boolean> {
  const names = MIGRATIONS.map((m) => m.name);
  try {
    const rows = (await orm.em.fork().execute(`select count(*)::int as n from mandate_migrations where name in (${names.map(() => '?').join(', ')})`, names)) as { n: number | string }[];
    return Number(rows[0]?.n) === names.length;
  } catch {
    return false;
  }
}
