// Benchmarks that also run on PostgreSQL: BENCH_DATABASE_URL, or a throwaway cluster started here
// (test/helpers/pg-cluster.ts); where neither is possible the PostgreSQL part is skipped, saying why.
export async function onPostgres(run: (url: string) => Promise<void>): Promise<void> {
  let stop: (() => void) | undefined;
  let url = process.env.BENCH_DATABASE_URL;
  if (!url) {
    try {
      const { startCluster } = await import('../test/helpers/pg-cluster.ts');
      const cluster = await startCluster();
      stop = cluster.stop;
      url = cluster.url;
    } catch (error) {
      console.log(`PostgreSQL  skipped: could not start a throwaway cluster (${(error as Error).message.split('\n')[0]})`);
      return;
    }
  }
  try {
    await run(url);
  } finally {
    stop?.();
  }
}
