import pg from 'pg';

export const EPOCH_QUERY = 'select "version" from "access_epoch" where "id" = 1';

/** Reads the access epoch; `close` releases what it holds. */
export interface EpochReader {
  read(): Promise<number>;
  close(): Promise<void>;
}

/**
 * The access epoch is read before every check, so on PostgreSQL it gets a connection of its own
 * and a prepared statement: through the ORM's pool that one primary-key read cost about 0.3 ms
 * per request, most of it layers above the socket (bench/http.bench.ts). A broken connection is
 * dropped and reopened by the next read.
 */
export function dedicatedEpochReader(url: string): EpochReader {
  let client: Promise<pg.Client> | undefined;
  const connect = () => {
    const fresh = new pg.Client({ connectionString: url, application_name: 'mandate epoch' });
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
  const readOnce = async () => {
    const current = client ?? connect();
    try {
      const result = await (await current).query<{ version: string | number }>({ name: 'mandate_access_epoch', text: EPOCH_QUERY });
      return Number(result.rows[0]?.version ?? 0);
    } catch (error) {
      if (client === current) client = undefined;
      void current.then((c) => c.end()).catch(() => undefined);
      throw error;
    }
  };
  // One query at a time on the one connection: pg queues overlapping queries itself today, but
  // that is deprecated (pg 9 refuses them), so each read waits for the one before.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    read() {
      const turn = queue.then(readOnce, readOnce);
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
