import pg from 'pg';
import { ACCESS_CHANGE_CHANNEL, NOTIFY_ACCESS_CHANGES_SETTING } from './entities/access-change.ts';

/**
 * What was appended to the `access_change` feed since the snapshot `since` (none: the first read,
 * which only takes a position), and the snapshot this read saw, to pass to the next. A row counts
 * when its transaction committed after `since` was taken and before this read: invisible then,
 * visible now. That is exactly once per row, whatever order transactions commit in (a sequence
 * number would skip a row whose transaction commits after a later one's). Index-backed: only rows
 * from transactions at or after the old snapshot's oldest running one are looked at.
 * `missed`: rows that `since` may not have seen were pruned meanwhile (see PRUNE_CHANGES_SQL).
 */
export const CHANGES_QUERY = `
select pg_current_snapshot()::text as snapshot,
       coalesce((select array_agg(distinct coalesce(c.subject_id::text, '*'))
                   from access_change c
                  where p.since is not null
                    and c.xid >= pg_snapshot_xmin(p.since::pg_snapshot)
                    and not pg_visible_in_snapshot(c.xid, p.since::pg_snapshot)), '{}') as changed,
       coalesce(p.since is not null and (select pruned.through_xid from access_change_pruned pruned where pruned.id = 1)
                >= pg_snapshot_xmin(p.since::pg_snapshot)::text::bigint, false) as missed
  from (select ?::text as since) p`;

/**
 * The embedded database's read: the feed, and whether its one session still notifies each append
 * and listens for it (`RESET ALL`, `DISCARD ALL`, `UNLISTEN`, or a PGlite instance rebuilt on
 * reconnect would stop that silently). Checked in the same statement, so from the snapshot it
 * returns on, either every append is heard or the reader knows it will not be.
 */
export const LOCAL_CHANGES_QUERY = CHANGES_QUERY.replace(
  /\n  from \(select/,
  `,\n       coalesce(current_setting('${NOTIFY_ACCESS_CHANGES_SETTING}', true) = 'on'
                and '${ACCESS_CHANGE_CHANNEL}' in (select pg_listening_channels()), false) as notifying\n  from (select`,
);

/**
 * The feed keeps an hour, and records the newest transaction it pruned: a reader whose last
 * snapshot predates it cannot know what it missed (a transaction open for over an hour that has
 * just committed, a process suspended) and drops everything instead. Only rows of transactions
 * older than every one still running go, so a transaction left open does not make every reader
 * drop everything at each read (its own rows, and later ones, wait until it ends).
 */
export const PRUNE_CHANGES_SQL = `
with gone as (delete from access_change where at < now() - interval '1 hour' and xid < pg_snapshot_xmin(pg_current_snapshot()) returning xid)
insert into access_change_pruned (id, through_xid)
select 1, max(xid::text::bigint) from gone having count(*) > 0
on conflict (id) do update set through_xid = greatest(access_change_pruned.through_xid, excluded.through_xid)`;

export interface ChangesRead {
  snapshot: string;
  /** Ids of the users and roles that changed; '*' for everything. */
  changed: string[];
  /** True when rows this reader may not have seen were pruned: it must drop everything. */
  missed?: boolean;
  /** LOCAL_CHANGES_QUERY only: whether the session still hears every append. */
  notifying?: boolean;
}

/**
 * The embedded database's feed: one process holds its data directory (see embedded-lock.ts), so
 * every append commits in this process, which hears of it at commit (a NOTIFY, see access_changed).
 * `heard` moves with each such commit; while it stands still, the feed has nothing new.
 */
export interface LocalFeed {
  readonly heard: number;
}

/** Reads the access-change feed; `close` releases what it holds. */
export interface ChangeReader {
  read(since: string | null): Promise<ChangesRead>;
  close(): Promise<void>;
}

const PG_QUERY = CHANGES_QUERY.replace(/\?/g, '$1');

/**
 * The feed is read before every check, so on PostgreSQL it gets a connection of its own and a
 * prepared statement: through the ORM's pool that read cost about 0.3 ms more per request, most
 * of it in layers above the socket (bench/http.bench.ts). A broken connection is dropped and
 * reopened by the next read.
 */
export function dedicatedChangeReader(url: string, timeouts: { connectTimeoutMs?: number; queryTimeoutMs?: number } = {}): ChangeReader {
  let client: Promise<pg.Client> | undefined;
  // Behind PgBouncer in transaction mode (before 1.21), a prepared statement lives on one server
  // connection and the next query may reach another: once the server says so, statements go unnamed.
  let prepared = true;
  const connect = () => {
    const fresh = new pg.Client({
      connectionString: url,
      application_name: 'mandate access changes',
      ...(timeouts.connectTimeoutMs ? { connectionTimeoutMillis: timeouts.connectTimeoutMs } : {}),
      ...(timeouts.queryTimeoutMs ? { query_timeout: timeouts.queryTimeoutMs } : {}),
    });
    // An idle connection that dies must not crash the process; the next read reconnects.
    fresh.on('error', () => {
      if (client === opened) client = undefined;
    });
    const opened = fresh.connect().then(() => fresh);
    client = opened;
    opened.catch(() => {
      if (client === opened) client = undefined;
    });
    return opened;
  };
  const readOnce = async (since: string | null): Promise<ChangesRead> => {
    const current = client ?? connect();
    try {
      const result = await (await current).query<{ snapshot: string; changed: string[]; missed: boolean }>({ ...(prepared ? { name: 'mandate_access_changes' } : {}), text: PG_QUERY, values: [since] });
      const row = result.rows[0]!;
      return { snapshot: row.snapshot, changed: row.changed, missed: row.missed };
    } catch (error) {
      // 26000: no such prepared statement; 42P05: it exists already (another client's, on a shared server connection).
      const code = (error as { code?: string }).code;
      if (prepared && (code === '26000' || code === '42P05')) prepared = false;
      if (client === current) client = undefined;
      void current.then((c) => c.end()).catch(() => undefined);
      throw error;
    }
  };
  // One query at a time on the one connection: pg queues overlapping queries itself today, but
  // that is deprecated (pg 9 refuses them), so each read waits for the one before.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    read(since) {
      const turn = queue.then(() => readOnce(since), () => readOnce(since));
      queue = turn.catch(() => undefined);
      return turn;
    },
    async close() {
      const current = client;
      client = undefined;
      if (current) await current.then((c) => c.end()).catch(() => undefined);
    },
  };
}
