// What a PM tool adds over calling the tracker directly. A fake Jira Cloud on loopback answers
// GET /rest/api/3/issue/{key} with a fixed issue; the baseline is that request made directly
// (node:http, keep-alive); the tool is get_issue through the runner (validation, permission check,
// the caller's connection and vault, the tracker call, Markdown conversion, audit). 1 and 16
// concurrent callers, BENCH_SECONDS each (default 5); ratios printed. Then the same tool called by
// a user whose grant is held only in a project bound to the Jira project (the binding guard's cost). On the embedded database,
// and on PostgreSQL when BENCH_DATABASE_URL is set (or a throwaway cluster can be started here).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { IN_MEMORY, loadConfig, type Config } from '../lib/config.ts';
import { onPostgres } from './postgres.ts';
import { openRuntime } from '../lib/runtime.ts';
import { createLogger } from '../lib/log.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { Project, ProjectBinding, Role, RoleAssignment, User } from '../lib/db/entities/index.ts';
import type { UserCaller } from '../lib/identity/caller.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WARMUP_MS = 1000;
const ISSUE = JSON.stringify({
  id: '10001',
  key: 'BENCH-1',
  fields: {
    summary: 'A benchmark issue',
    status: { name: 'In Progress' },
    issuetype: { name: 'Task' },
    priority: { name: 'Medium' },
    assignee: { accountId: '5b10a2844c20165700ede21g', displayName: 'Alice', emailAddress: 'alice@bench.test' },
    reporter: { accountId: '5b10a2844c20165700ede21g', displayName: 'Alice' },
    project: { key: 'BENCH' },
    labels: ['bench'],
    created: '2026-11-01T10:00:00.000+0000',
    updated: '2026-11-20T10:00:00.000+0000',
    description: { type: 'doc', version: 1, content: [{ type: 'paragraph', content: [{ type: 'text', text: 'Some ' }, { type: 'text', text: 'bold', marks: [{ type: 'strong' }] }, { type: 'text', text: ' text.' }] }] },
  },
});

const upstream = http.createServer((req, res) => {
  if (req.url?.startsWith('/rest/api/3/myself')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"accountId":"5b10a2844c20165700ede21g","displayName":"Alice"}');
  res.writeHead(200, { 'content-type': 'application/json' }).end(ISSUE);
});
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

const agent = new http.Agent({ keepAlive: true });
const direct = () =>
  new Promise<void>((resolve, reject) => {
    const req = http.get(`${base}/rest/api/3/issue/BENCH-1?fields=summary,status`, { agent, headers: { authorization: 'Basic YWxpY2U6dG9rZW4=', accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        JSON.parse(Buffer.concat(chunks).toString());
        resolve();
      });
    });
    req.on('error', reject);
  });

const PM_ENV = { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' };

/** A runtime with one developer holding a Jira Cloud connection to the fake; get_issue as them. */
async function toolOn(config: Config) {
  const runtime = await openRuntime(config, { command: 'bench', log: createLogger({ level: 'silent' }) });
  const em = runtime.db.orm.em.fork();
  const user = em.create(User, { name: 'bench', email: 'bench@bench.test', displayName: 'Bench', type: 'human', active: true });
  em.create(RoleAssignment, { user, role: await em.findOneOrFail(Role, { name: 'developer' }), project: null });
  await em.flush();
  const caller: UserCaller = { kind: 'user', userId: user.id, name: user.name, email: user.email, type: 'human' };
  const added = await runtime.runner.run(OPERATIONS.add_pm_connection!, caller, { provider: 'jira_cloud', base_url: base, email: 'alice@bench.test', api_token: 'bench-token-value' });
  if (!added.ok) throw new Error(added.error.message);
  const tool = async () => {
    const result = await runtime.runner.run(OPERATIONS.get_issue!, caller, { key: 'BENCH-1' });
    if (!result.ok) throw new Error(result.error.message);
  };
  // The same call by a user whose pm:read is held only in project BENCH, bound to Jira project
  // BENCH: the binding guard runs on every call (a global grant skips it).
  const project = em.create(Project, { key: 'BENCH', name: 'Bench' });
  em.create(ProjectBinding, { project, tracker: 'jira', trackerProject: 'BENCH' });
  const scopedUser = em.create(User, { name: 'bench-scoped', email: 'scoped@bench.test', displayName: 'Scoped', type: 'human', active: true });
  em.create(RoleAssignment, { user: scopedUser, role: await em.findOneOrFail(Role, { name: 'developer' }), project });
  await em.flush();
  const scoped: UserCaller = { kind: 'user', userId: scopedUser.id, name: scopedUser.name, email: scopedUser.email, type: 'human' };
  const connected = await runtime.runner.run(OPERATIONS.add_pm_connection!, scoped, { provider: 'jira_cloud', base_url: base, email: 'alice@bench.test', api_token: 'bench-token-value' });
  if (!connected.ok) throw new Error(connected.error.message);
  const boundTool = async () => {
    const result = await runtime.runner.run(OPERATIONS.get_issue!, scoped, { key: 'BENCH-1' });
    if (!result.ok) throw new Error(result.error.message);
  };
  return { runtime, tool, boundTool };
}

/** Calls per second and p99 latency with `concurrency` callers in a loop. */
async function measure(fn: () => Promise<void>, concurrency: number) {
  const until = (deadline: number, latencies?: number[]) =>
    Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const started = performance.now();
        await fn();
        latencies?.push(performance.now() - started);
      }
    }));
  await until(performance.now() + WARMUP_MS);
  const latencies: number[] = [];
  const started = performance.now();
  await until(started + SECONDS * 1000, latencies);
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / elapsed, p50: latencies[Math.floor(latencies.length * 0.5)]!, p99: latencies[Math.floor(latencies.length * 0.99)]! };
}

async function run(database: string, config: Config) {
  const { runtime, tool, boundTool } = await toolOn(config);
  try {
    for (const concurrency of [1, 16]) {
      const baseline = await measure(direct, concurrency);
      const measured = await measure(tool, concurrency);
      const line = (name: string, m: typeof baseline) =>
        console.log(`${database.padEnd(10)} ${String(concurrency).padStart(2)} callers  ${name.padEnd(20)} ${m.rate.toFixed(0).padStart(7)} calls/s  p50 ${m.p50.toFixed(2).padStart(6)} ms  p99 ${m.p99.toFixed(2).padStart(6)} ms`);
      line('direct upstream GET', baseline);
      line('get_issue tool', measured);
      console.log(`${database.padEnd(10)} ${String(concurrency).padStart(2)} callers  tool/direct: throughput ${(measured.rate / baseline.rate).toFixed(2)}x, p50 +${(measured.p50 - baseline.p50).toFixed(2)} ms, p99 ${(measured.p99 / baseline.p99).toFixed(2)}x`);
      const bound = await measure(boundTool, concurrency);
      line('get_issue, bound', bound);
      console.log(`${database.padEnd(10)} ${String(concurrency).padStart(2)} callers  bound/unbound get_issue: throughput ${(bound.rate / measured.rate).toFixed(2)}x, p50 +${(bound.p50 - measured.p50).toFixed(2)} ms`);
    }
  } finally {
    await runtime.close();
  }
}

try {
  await run('PGlite', loadConfig({ MANDATE_DATA_DIR: IN_MEMORY, ...PM_ENV }));
  // PostgreSQL has no generated key file: the bench brings its own vault key.
  await onPostgres((url) => run('PostgreSQL', loadConfig({ DATABASE_URL: url, MANDATE_VAULT_KEY: `bench:${randomBytes(32).toString('base64')}`, ...PM_ENV })));
} finally {
  agent.destroy();
  upstream.close();
}
