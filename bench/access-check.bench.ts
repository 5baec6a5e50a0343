// What a permission check costs per call, against the cheapest possible database round trip
// (`select 1`) measured in the same run on the same database:
//   cached   - the resolver with a warm cache (one epoch read per check)
//   uncached - a full resolution every time (liveness + grants queries)
// On the embedded database, and on PostgreSQL when BENCH_DATABASE_URL is set (or a throwaway
// cluster can be started here).
import { IN_MEMORY, loadConfig, type Config } from '../lib/config.ts';
import { onPostgres } from './postgres.ts';
import { openRuntime, type Runtime } from '../lib/runtime.ts';
import { createLogger } from '../lib/log.ts';
import { AccessChanges } from '../lib/access/changes.ts';
import { PermissionResolver } from '../lib/access/resolver.ts';
import { Delegation, Role, RoleAssignment, User } from '../lib/db/entities/index.ts';
import type { UserCaller } from '../lib/identity/caller.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

async function measure(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await fn();
  const deadline = performance.now() + SECONDS * 1000;
  let count = 0;
  while (performance.now() < deadline) {
    await fn();
    count++;
  }
  return count / SECONDS;
}

async function seed(runtime: Runtime): Promise<UserCaller> {
  const em = runtime.db.orm.em.fork();
  const boss = em.create(User, { name: 'boss', email: 'boss@bench.test', displayName: 'Boss', type: 'human', active: true });
  const user = em.create(User, { name: 'bench', email: 'bench@bench.test', displayName: 'Bench', type: 'human', active: true });
  em.create(RoleAssignment, { user: boss, role: await em.findOneOrFail(Role, { name: 'admin' }), project: null });
  em.create(RoleAssignment, { user, role: await em.findOneOrFail(Role, { name: 'developer' }), project: null });
  for (const permission of ['users:read', 'audit:read', 'roles:read']) {
    em.create(Delegation, { delegator: boss, delegate: user, permission, project: null, reason: 'bench' });
  }
  await em.flush();
  return { kind: 'user', userId: user.id, name: user.name, email: user.email, type: 'human' };
}

async function run(label: string, config: Config) {
  const runtime = await openRuntime(config, { command: 'bench', log: createLogger({ level: 'silent' }) });
  try {
    const caller = await seed(runtime);
    const cached = new PermissionResolver(new AccessChanges());
    const baseline = await measure(() => runtime.db.orm.em.fork().execute('select 1', [], 'get'));
    const warm = await measure(() => cached.resolve(runtime.db.orm.em.fork(), caller));
    const cold = await measure(() => new PermissionResolver(new AccessChanges()).resolve(runtime.db.orm.em.fork(), caller));
    const row = (name: string, rate: number) =>
      console.log(`${label.padEnd(11)} ${name.padEnd(26)} ${rate.toFixed(0).padStart(8)} checks/s  ${(1000 / rate).toFixed(3).padStart(7)} ms  ${(rate / baseline).toFixed(2)}x of select 1`);
    row('baseline: select 1', baseline);
    row('check, cached', warm);
    row('check, full resolution', cold);
    console.log(`${label.padEnd(11)} cache speed-up: ${(warm / cold).toFixed(2)}x`);
  } finally {
    await runtime.close();
  }
}

await run('PGlite', loadConfig({ MANDATE_DATA_DIR: IN_MEMORY }));

await onPostgres((url) => run('PostgreSQL', loadConfig({ DATABASE_URL: url })));
