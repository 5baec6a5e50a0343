// The load-and-fault harness (`npm run bench -- load`; not a test, and not part of a plain
// `npm run bench`): BENCH_LOAD_SESSIONS sessions (default 50) of mixed traffic for
// BENCH_LOAD_SECONDS (default 120) against two `mandate serve` instances on one PostgreSQL, with a
// PostgreSQL restart at 1/4 of the run and one instance killed (SIGKILL) at 9/20, so the last
// 60 s (of the default 120) are all after the kill. Traffic, over
// REST with Bearer tokens, one call at a time per session: reads (whoami, get_my_permissions,
// list_users), writes (update_user of the session's own user), PM calls (get_issue against a fake
// Jira Cloud on loopback) and agent sessions started and ended. A session whose instance is gone
// moves to the other one (a load balancer would). Prints throughput, p50/p99 and errors per phase,
// the recovery time after the restart, the surviving instance's RSS over the last 60 s, and then
// checks every write a client saw succeed is in the database and every answered call has its
// audit event (by request id).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import { newVaultKeyLine } from '../lib/vault.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import { pinned, start } from './http-load.ts';

const SESSIONS = Number(process.env.BENCH_LOAD_SESSIONS ?? 50);
const SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 120);
const OUTAGE_SECONDS = Number(process.env.BENCH_LOAD_OUTAGE_SECONDS ?? 3);
const restartAt = (SECONDS / 4) * 1000;
const killAt = ((9 * SECONDS) / 20) * 1000;

// A fake Jira Cloud: who the credentials belong to, and one issue.
const ISSUE = JSON.stringify({ id: '10001', key: 'LOAD-1', fields: { summary: 'A load issue', status: { name: 'To Do' }, issuetype: { name: 'Task' }, project: { key: 'LOAD' }, labels: [], created: '2026-11-01T10:00:00.000+0000', updated: '2026-11-01T10:00:00.000+0000', description: null } });
const tracker = http.createServer((req, res) => {
  const body = req.url?.startsWith('/rest/api/3/myself') ? '{"accountId":"5b10a2844c20165700ede21g","displayName":"Load"}' : ISSUE;
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
});
await new Promise<void>((resolve) => tracker.listen(0, '127.0.0.1', resolve));
const trackerUrl = `http://127.0.0.1:${(tracker.address() as AddressInfo).port}`;

const cluster = await startCluster();
const env = { DATABASE_URL: cluster.url, MANDATE_VAULT_KEY: newVaultKeyLine('load'), MANDATE_LOG_LEVEL: 'warn', MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_DB_POOL_MAX: '20' };
const quiet = createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) });

interface SessionUser {
  id: string;
  token: string;
}
const users: SessionUser[] = [];
{
  const runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  const system = { kind: 'system', name: 'bench' } as const;
  const em = runtime.db.orm.em.fork();
  for (let i = 0; i < SESSIONS; i++) {
    const created = await runtime.runner.run(ops.createUser, system, { email: `load-${i}@bench.test`, roles: ['admin', 'developer'] });
    if (!created.ok) throw created.error;
    const user = await em.findOneOrFail(User, { email: `load-${i}@bench.test` });
    const secret = generateApiToken();
    em.create(ApiToken, { user, name: 'load', prefix: secret.prefix, hash: secret.hash, scopes: null, expiresAt: null });
    await em.flush();
    const caller = { kind: 'user', userId: user.id, name: user.name, email: user.email, type: 'human' } as const;
    const connected = await runtime.runner.run(ops.OPERATIONS.add_pm_connection!, caller, { provider: 'jira_cloud', base_url: trackerUrl, email: `load-${i}@bench.test`, api_token: `load-token-${i}` });
    if (!connected.ok) throw connected.error;
    users.push({ id: user.id, token: secret.raw });
  }
  await runtime.close();
}

const instances = [await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], env, /listening on (http:\/\/[\d.:]+)/), await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], env, /listening on (http:\/\/[\d.:]+)/)];
const alive = [true, true];
// What the instances logged at warn and above, by message (and error code), for the error counts' causes.
const logged = new Map<string, number>();
for (const { child } of instances) {
  for (const stream of [child.stdout!, child.stderr!]) {
    createInterface({ input: stream }).on('line', (line) => {
      let entry: { level?: number; msg?: string; code?: string; op?: string; err?: { type?: string; code?: string; message?: string } };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if ((entry.level ?? 0) < 40) return;
      const key = [entry.msg, entry.op, entry.code ?? entry.err?.code, entry.err?.message?.slice(0, 80)].filter(Boolean).join(' | ');
      logged.set(key, (logged.get(key) ?? 0) + 1);
    });
  }
}

type Kind = 'read' | 'write' | 'pm' | 'agent';
interface Call {
  at: number;
  ms: number;
  kind: Kind;
  ok: boolean;
  status: number | 'network';
  requestId: string;
}
const calls: Call[] = [];
const acknowledged: { userId: string; displayName: string; at: number }[] = [];
const agentSessions: { id: string; ended: boolean }[] = [];
let seq = 0;
const began = performance.now();

async function request(session: number, method: string, path: string, kind: Kind, body?: unknown): Promise<{ ok: boolean; json?: any }> {
  const user = users[session]!;
  let instance = session % 2;
  if (!alive[instance]) instance = 1 - instance;
  const requestId = `load-${process.pid}-${++seq}`;
  const at = performance.now() - began;
  try {
    const response = await fetch(`${instances[instance]!.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', 'x-request-id': requestId },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const json = await response.json().catch(() => undefined);
    const ok = response.status >= 200 && response.status < 300;
    calls.push({ at, ms: performance.now() - began - at, kind, ok, status: response.status, requestId });
    return { ok, json };
  } catch {
    calls.push({ at, ms: performance.now() - began - at, kind, ok: false, status: 'network', requestId });
    if (instance === 0 && performance.now() - began > killAt) alive[0] = false;
    return { ok: false };
  }
}

async function session(i: number, until: number) {
  let step = 0;
  while (performance.now() - began < until) {
    const roll = step++ % 10;
    if (roll < 5) await request(i, 'GET', ['/api/me', '/api/me/permissions', '/api/admin/users?limit=10'][roll % 3]!, 'read');
    else if (roll < 7) {
      const displayName = `Load ${i} ${step}`;
      const done = await request(i, 'PATCH', `/api/admin/users/${users[i]!.id}`, 'write', { display_name: displayName });
      if (done.ok) acknowledged.push({ userId: users[i]!.id, displayName, at: performance.now() });
    } else if (roll < 9) await request(i, 'GET', '/api/pm/issues/LOAD-1', 'pm');
    else {
      const started = await request(i, 'POST', '/api/agent-sessions', 'agent', { role: 'developer' });
      if (started.ok) {
        const record = { id: started.json.agent_session.id as string, ended: false };
        agentSessions.push(record);
        const ended = await request(i, 'DELETE', `/api/agent-sessions/${record.id}`, 'agent');
        record.ended = ended.ok;
      }
    }
  }
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

console.log(`${SESSIONS} sessions x ${SECONDS} s against two instances on one PostgreSQL${pinned ? ' (servers on core 1, load on core 0)' : ''}; PostgreSQL restarted at ${Math.round(restartAt / 1000)} s (down ${OUTAGE_SECONDS} s), instance A killed at ${Math.round(killAt / 1000)} s\n`);
const rss: { at: number; kib: number }[] = [];
const sampler = setInterval(() => rss.push({ at: performance.now() - began, kib: rssKiB(instances[1]!.child.pid!) }), 1000);
let restartedAt = 0;
let backAt = 0;
const faults = (async () => {
  await new Promise((resolve) => setTimeout(resolve, restartAt));
  restartedAt = performance.now() - began;
  cluster.halt();
  await new Promise((resolve) => setTimeout(resolve, OUTAGE_SECONDS * 1000));
  cluster.resume();
  backAt = performance.now() - began;
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, killAt - (performance.now() - began))));
  instances[0]!.child.kill('SIGKILL');
  alive[0] = false;
})();
await Promise.all(Array.from({ length: SESSIONS }, (_, i) => session(i, SECONDS * 1000)));
await faults;
clearInterval(sampler);

const pct = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : Number.NaN;
};
const firstOkAfterBack = calls.filter((c) => c.at >= backAt && c.ok).sort((a, b) => a.at + a.ms - (b.at + b.ms))[0];
const firstOkAt = firstOkAfterBack ? firstOkAfterBack.at + firstOkAfterBack.ms : Number.NaN;
// Recovered once calls stop failing: the last error ending within the recovery bound (5 s) after
// PostgreSQL is back closes the window; any later one counts against the phase after it.
const RECOVERY_BOUND_MS = 5_000;
const lastOutageError = Math.max(firstOkAt, ...calls.filter((c) => !c.ok && c.at + c.ms >= backAt && c.at + c.ms < Math.min(killAt, backAt + RECOVERY_BOUND_MS)).map((c) => c.at + c.ms + 0.001));
const recoveredAt = lastOutageError;
const lastErrorAfterBack = Math.max(firstOkAt, ...calls.filter((c) => !c.ok && c.at + c.ms >= backAt && c.at + c.ms < killAt).map((c) => c.at + c.ms));
const phases: [string, number, number][] = [
  ['steady', 5_000, restartedAt],
  ['PostgreSQL down', restartedAt, backAt],
  ['recovering', backAt, recoveredAt],
  ['after the restart', recoveredAt, killAt],
  // Calls in flight to the killed instance fail (a client sees the connection drop) and its
  // sessions move to the survivor: the kill's outage window.
  ['instance killed', killAt, killAt + 1000],
  ['after the kill', killAt + 1000, SECONDS * 1000],
];
console.log(`${'phase'.padEnd(20)} ${'seconds'.padStart(7)} ${'calls/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'errors'.padStart(7)}  errors by kind`);
// A call belongs to the phase it ended in: one in flight when the instance died fails then.
for (const [name, from, to] of phases) {
  const inPhase = calls.filter((c) => c.at + c.ms >= from && c.at + c.ms < to);
  const seconds = Math.max(0.001, (to - from) / 1000);
  const latencies = inPhase.filter((c) => c.ok).map((c) => c.ms);
  const errors = inPhase.filter((c) => !c.ok);
  const byKind = Object.entries(Object.groupBy(errors, (c) => `${c.kind} ${c.status}`)).map(([k, v]) => `${k}: ${v!.length}`).join(', ');
  console.log(`${name.padEnd(20)} ${seconds.toFixed(1).padStart(7)} ${(inPhase.filter((c) => c.ok).length / seconds).toFixed(0).padStart(8)} ${pct(latencies, 0.5).toFixed(1).padStart(7)} ${pct(latencies, 0.99).toFixed(1).padStart(7)} ${String(errors.length).padStart(7)}  ${byKind}`);
}
console.log(`\nrecovery: first call answered ${((firstOkAt - backAt) / 1000).toFixed(2)} s after PostgreSQL was back, the last failed ${((lastErrorAfterBack - backAt) / 1000).toFixed(2)} s after (the bound: ${RECOVERY_BOUND_MS / 1000} s)`);
const tail = rss.filter((r) => r.at >= SECONDS * 1000 - 60_000).map((r) => r.kib);
if (tail.length) {
  const [low, high, mean] = [Math.min(...tail), Math.max(...tail), tail.reduce((a, b) => a + b, 0) / tail.length];
  console.log(`RSS of the surviving instance over the last 60 s: ${(low / 1024).toFixed(0)}-${(high / 1024).toFixed(0)} MiB (${(((high - low) / mean) * 100).toFixed(1)} % of its mean)`);
  console.log(`  every 10 s: ${rss.filter((_, i) => i % 10 === 9).map((r) => (r.kib / 1024).toFixed(0)).join(' ')} MiB`);
}
if (logged.size) {
  console.log('\nlogged by the instances (warn and above):');
  for (const [key, count] of [...logged].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${String(count).padStart(6)}  ${key}`);
}

// Verification: acknowledged writes are present (each user's last acknowledged display name, or a
// later one it wrote), agent sessions ended when the client saw them end, answered calls audited.
const db = new pg.Client({ connectionString: cluster.url });
await db.connect();
const names = new Map((await db.query<{ id: string; display_name: string }>('select id, display_name from app_user where email like $1', ['load-%'])).rows.map((r) => [r.id, r.display_name]));
const lastAck = new Map<string, string>();
for (const ack of acknowledged) lastAck.set(ack.userId, ack.displayName);
let lost = 0;
for (const [userId, displayName] of lastAck) {
  const now = names.get(userId)!;
  const step = (name: string) => Number(name.split(' ')[2]);
  // Written later (acknowledged or not) is fine; older than the last acknowledged write is a loss.
  if (now !== displayName && !(step(now) > step(displayName))) lost++;
}
const endedIds = agentSessions.filter((s) => s.ended).map((s) => s.id);
const notEnded = endedIds.length
  ? (await db.query<{ n: number }>('select count(*)::int as n from agent_session where id = any($1::uuid[]) and ended_at is null', [endedIds])).rows[0]!.n
  : 0;
const answered = calls.filter((c) => c.ok).map((c) => c.requestId);
const audited = new Set<string>();
for (let i = 0; i < answered.length; i += 5000) {
  const rows = await db.query<{ request_id: string }>('select request_id from audit_event where request_id = any($1::text[])', [answered.slice(i, i + 5000)]);
  for (const row of rows.rows) audited.add(row.request_id);
}
const unaudited = calls.filter((c) => c.ok && !audited.has(c.requestId));
await db.end();
console.log(`\nverification: ${answered.length} answered calls, ${acknowledged.length} acknowledged writes, ${endedIds.length} agent sessions seen ended`);
console.log(`  lost acknowledged writes: ${lost}`);
console.log(`  agent sessions seen ended but not ended: ${notEnded}`);
console.log(`  answered calls without an audit event: ${unaudited.length}${unaudited.length ? ` (${Object.entries(Object.groupBy(unaudited, (c) => (c.at >= killAt - 1000 && c.at < killAt + 1000 ? 'around the kill' : c.kind))).map(([k, v]) => `${k}: ${v!.length}`).join(', ')})` : ''}`);
console.log('\ntargets: zero lost acknowledged writes, zero answered calls without an audit event, errors only in the outage windows, recovery <= 5 s, RSS flat (+-10 %) over the last 60 s');

instances[1]!.child.kill('SIGTERM');
tracker.close();
cluster.stop();
process.exit(0);
