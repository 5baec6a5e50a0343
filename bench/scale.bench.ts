// Growth: the latency of the calls that grow with the data — list_users with a search,
// query_audit by actor and by time window, get_my_permissions, and a cold permission check (a
// fresh resolver: both resolution queries) — at a small size (1,000 users, 10,000 audit events)
// and at a large one (BENCH_SCALE_USERS users and as many delegations, default 100,000;
// BENCH_SCALE_AUDIT audit events, default 10,000,000), on PostgreSQL, through the runner. Each is
// the median of BENCH_SCALE_REPEATS (default 200) calls after a warm-up, with a different search
// term, actor or window each time. Ratios large / small are printed; the target is <= 2x.
import { Writable } from 'node:stream';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime, type Runtime } from '../lib/runtime.ts';
import { PermissionResolver } from '../lib/access/resolver.ts';
import { AccessChanges } from '../lib/access/changes.ts';
import { maintainAuditPartitions } from '../lib/audit/partitions.ts';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import type { UserCaller } from '../lib/identity/caller.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import pg from 'pg';

const LARGE_USERS = Number(process.env.BENCH_SCALE_USERS ?? 100_000);
const LARGE_AUDIT = Number(process.env.BENCH_SCALE_AUDIT ?? 10_000_000);
const REPEATS = Number(process.env.BENCH_SCALE_REPEATS ?? 200);
const quiet = createLogger({ level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) });

/** Users `scale1..n` (display names from md5, so a search term matches a handful), each a developer; the first 100 admins delegating users:read to the rest; audit events over the last 90 days. */
async function generate(runtime: Runtime, users: number, events: number) {
  const em = runtime.db.orm.em.fork();
  const now = new Date();
  for (let back = 0; back <= 3; back++) await maintainAuditPartitions(em, new Date(now.getTime() - back * 30 * 86_400_000), null);
  const batch = 50_000;
  for (let from = 1; from <= users; from += batch) {
    const to = Math.min(users, from + batch - 1);
    await em.execute(`insert into app_user (id, name, email, display_name, type, active, created_at, updated_at)
      select gen_random_uuid(), 'scale' || i, 'scale' || i || '@bench.test', 'Scale ' || substr(md5(i::text), 1, 12), 'human', true, now() - i * interval '1 second', now()
        from generate_series(${from}, ${to}) i`);
  }
  await em.execute(`insert into role_assignment (id, user_id, role_id, created_at)
    select gen_random_uuid(), u.id, r.id, now() from app_user u, role r
     where u.name like 'scale%' and r.name = case when substr(u.name, 6)::int <= 100 then 'admin' else 'developer' end`);
  await em.execute(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at)
    select gen_random_uuid(), boss.id, u.id, 'users:read', 'scale', now()
      from app_user u join app_user boss on boss.name = 'scale' || (1 + substr(u.name, 6)::int % 100)
     where u.name like 'scale%' and substr(u.name, 6)::int > 100`);
  for (let from = 1; from <= events; from += 500_000) {
    const to = Math.min(events, from + 500_000 - 1);
    await em.execute(`insert into audit_event (id, at, actor_id, actor_name, operation, outcome, target)
      select gen_random_uuid(), now() - (i % (90 * 86400)) * interval '1 second', u.id, u.name,
             (array['whoami','list_users','get_user','query_audit','create_user','update_user','issue_token'])[1 + i % 7],
             case when i % 97 = 0 then 'denied' else 'allowed' end, 'user:' || u.id
        from generate_series(${from}, ${to}) i
        join app_user u on u.name = 'scale' || (1 + i % ${users})`);
  }
  await em.execute('vacuum analyze');
}

async function median(fn: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20; i++) await fn(i);
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const started = performance.now();
    await fn(i + 20);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function measure(users: number, events: number) {
  const cluster = await startCluster();
  const admin = new pg.Client({ connectionString: cluster.url });
  try {
    const started = performance.now();
    const runtime = await openRuntime(loadConfig({ DATABASE_URL: cluster.url }), { command: 'bench', log: quiet });
    await generate(runtime, users, events);
    const generated = (performance.now() - started) / 1000;
    await admin.connect();
    const size = (await admin.query<{ size: string }>(`select pg_size_pretty(sum(pg_total_relation_size(c.oid))) as size from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_event'::regclass`)).rows[0]!.size;
    const em = runtime.db.orm.em.fork();
    const person = async (n: number): Promise<UserCaller> => {
      const row = (await em.execute<{ id: string; email: string; display_name: string }>('select id, email, display_name from app_user where name = ?', [`scale${n}`], 'get'))!;
      return { kind: 'user', userId: row.id, name: `scale${n}`, email: row.email, type: 'human' };
    };
    const boss = await person(1);
    const people = await Promise.all(Array.from({ length: 50 }, (_, i) => person(101 + ((i * 7919) % (users - 100)))));
    const names = await Promise.all(people.map(async (p) => (await em.execute<{ display_name: string }>('select display_name from app_user where id = ?', [p.userId], 'get'))!.display_name));
    const run = async (op: AnyOperation, caller: UserCaller, input: Record<string, unknown>) => {
      const result = await runtime.runner.run(op, caller, input);
      if (!result.ok) throw new Error(`${op.name}: ${result.error.message}`);
    };
    const day = 86_400_000;
    const results = {
      'list_users (search)': await median((i) => run(ops.listUsers, boss, { search: names[i % names.length]!.slice(8, 16) })),
      'query_audit (by actor)': await median((i) => run(ops.queryAudit, boss, { actor_id: people[i % people.length]!.userId })),
      'query_audit (time window)': await median((i) => run(ops.queryAudit, boss, { since: new Date(Date.now() - (2 + (i % 60)) * day).toISOString(), until: new Date(Date.now() - (1 + (i % 60)) * day).toISOString() })),
      get_my_permissions: await median((i) => run(ops.getMyPermissions, people[i % people.length]!, {})),
      'cold permission check': await median((i) => new PermissionResolver(new AccessChanges()).resolve(runtime.db.orm.em.fork(), people[i % people.length]!)),
    };
    await runtime.close();
    return { results, generated, size };
  } finally {
    await admin.end().catch(() => undefined);
    cluster.stop();
  }
}

console.log(`PostgreSQL; each figure the median of ${REPEATS} calls through the runner, after a warm-up\n`);
const small = await measure(1_000, 10_000);
console.log(`small: 1,000 users, 900 delegations, 10,000 audit events (generated in ${small.generated.toFixed(0)} s; audit ${small.size})`);
const large = await measure(LARGE_USERS, LARGE_AUDIT);
console.log(`large: ${LARGE_USERS.toLocaleString('en')} users, ${(LARGE_USERS - 100).toLocaleString('en')} delegations, ${LARGE_AUDIT.toLocaleString('en')} audit events (generated in ${large.generated.toFixed(0)} s; audit ${large.size})\n`);
console.log(`${'call'.padEnd(28)} ${'small ms'.padStart(9)} ${'large ms'.padStart(9)} ${'ratio'.padStart(6)}`);
for (const [name, ms] of Object.entries(small.results)) {
  const big = large.results[name as keyof typeof large.results];
  console.log(`${name.padEnd(28)} ${ms.toFixed(2).padStart(9)} ${big.toFixed(2).padStart(9)} ${`${(big / ms).toFixed(2)}x`.padStart(6)}`);
}
console.log('\ntarget: each within 2x of its latency at the small size');
