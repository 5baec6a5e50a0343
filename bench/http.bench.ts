// MCP over Streamable HTTP: Mandate's `mandate serve` (whoami, with Bearer and with Basic) against
// a bare @modelcontextprotocol/sdk Streamable HTTP echo server measured in the same run.
// Each: BENCH_SECONDS (default 10) at 1 and at 32 concurrent sessions, one call at a time per
// session; throughput, p50, p99, and the server's CPU time per request (from /proc: steadier than
// throughput on this noisy machine). Then idle memory per open session (BENCH_IDLE_SESSIONS, 1,000).
// Servers run on core 1 and this load generator on core 0 when `taskset` exists.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
// Every server gets the same warm-up: SERVER_WARMUP_SECONDS of load once after it starts, then
// WARMUP_SECONDS before each row. A fresh Mandate server keeps getting cheaper for about 15 s of
// load (JIT tiers; 680 us of CPU per request in its first seconds, 383 us after 18 s, at one
// session): without the long warm-up its first row measured the JIT rather than the server.
const SERVER_WARMUP_SECONDS = Number(process.env.BENCH_SERVER_WARMUP_SECONDS ?? 15);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const IDLE_SESSIONS = Number(process.env.BENCH_IDLE_SESSIONS ?? 1000);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const pinned = spawnSync('taskset', ['--version']).status === 0;
if (pinned) spawnSync('taskset', ['-cp', '0', String(process.pid)]);

function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ child: ChildProcess; url: string }> {
  const [command, ...rest] = pinned ? ['taskset', '-c', '1', process.execPath, ...args] : [process.execPath, ...args];
  const child = spawn(command!, rest, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    const onLine = (line: string) => {
      const match = ready.exec(line);
      if (match) resolve({ child, url: match[1]! });
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

async function initialize(url: string, auth: Record<string, string>): Promise<string> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...HEADERS, ...auth },
    body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } } }),
  });
  await response.text();
  const session = response.headers.get('mcp-session-id');
  if (!session) throw new Error(`initialize failed: HTTP ${response.status}`);
  return session;
}

async function load(url: string, auth: Record<string, string>, tool: string, sessions: number, pid: number, seconds = SECONDS) {
  const ids = await Promise.all(Array.from({ length: sessions }, () => initialize(url, auth)));
  const latencies: number[] = [];
  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: {} } });
  const run = async (session: string, until: number, record: boolean) => {
    while (performance.now() < until) {
      const started = performance.now();
      const response = await fetch(url, { method: 'POST', headers: { ...HEADERS, ...auth, 'mcp-session-id': session }, body });
      const text = await response.text();
      if (response.status !== 200 || text.includes('"isError":true')) throw new Error(`${tool}: HTTP ${response.status} ${text.slice(0, 200)}`);
      if (record) latencies.push(performance.now() - started);
    }
  };
  await Promise.all(ids.map((id) => run(id, performance.now() + WARMUP_SECONDS * 1000, false))); // warm-up
  const cpuBefore = cpuTicks(pid);
  const started = performance.now();
  await Promise.all(ids.map((id) => run(id, started + seconds * 1000, true)));
  const elapsed = (performance.now() - started) / 1000;
  const cpuMs = ((cpuTicks(pid) - cpuBefore) * 1000) / TICKS_PER_SECOND;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!;
  return { rate: latencies.length / elapsed, p50: pct(0.5), p99: pct(0.99), cpuUs: (cpuMs * 1000) / latencies.length };
}

// utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND = 100;
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

async function idleMemory(url: string, auth: Record<string, string>, pid: number) {
  const before = rssKiB(pid);
  for (let i = 0; i < IDLE_SESSIONS; i += 50) await Promise.all(Array.from({ length: Math.min(50, IDLE_SESSIONS - i) }, () => initialize(url, auth)));
  await new Promise((resolve) => setTimeout(resolve, 500));
  return ((rssKiB(pid) - before) * 1024) / IDLE_SESSIONS;
}

const cluster = await startCluster();
const servers: ChildProcess[] = [];
try {
  const env = { DATABASE_URL: cluster.url, MANDATE_LOG_LEVEL: 'warn' };
  const password = 'bench password 1';
  const quiet = createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) });
  const runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  const created = await runtime.runner.run(ops.createUser, { kind: 'system', name: 'bench' }, { email: 'bench@bench.test', password, roles: ['developer'] });
  if (!created.ok) throw created.error;
  const em = runtime.db.orm.em.fork();
  const secret = generateApiToken();
  em.create(ApiToken, { user: await em.findOneOrFail(User, { email: 'bench@bench.test' }), name: 'bench', prefix: secret.prefix, hash: secret.hash, scopes: null, expiresAt: null });
  await em.flush();
  await runtime.close();

  const bare = await start(['bench/fixtures/http-echo-server.mjs'], {}, /(http:\/\/[\d.:]+)/);
  servers.push(bare.child);
  const mandate = await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], env, /listening on (http:\/\/[\d.:]+)/);
  servers.push(mandate.child);
  const bearer = { authorization: `Bearer ${secret.raw}` };
  const basic = { authorization: `Basic ${Buffer.from(`bench@bench.test:${password}`).toString('base64')}` };

  // Each server's tools, both ways of authenticating, at a few sessions, for the same total time
  // (load() warms WARMUP_SECONDS itself before it measures); nothing of it is reported.
  await load(`${bare.url}/mcp`, {}, 'echo', 4, bare.child.pid!, SERVER_WARMUP_SECONDS - WARMUP_SECONDS);
  for (const auth of [bearer, basic]) {
    await load(`${mandate.url}/mcp/core`, auth, 'whoami', 4, mandate.child.pid!, SERVER_WARMUP_SECONDS / 2 - WARMUP_SECONDS);
  }

  console.log(`Streamable HTTP, ${SECONDS} s per row${pinned ? ', servers on core 1, load on core 0' : ''}; ratios against the bare SDK server; each server warmed for ${SERVER_WARMUP_SECONDS} s first\n`);
  console.log(`${'server'.padEnd(34)} ${'sessions'.padStart(8)} ${'req/s'.padStart(8)} ${'ratio'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'p99 ratio'.padStart(9)} ${'CPU us/req'.padStart(10)}`);
  for (const sessions of [1, 32]) {
    const base = await load(`${bare.url}/mcp`, {}, 'echo', sessions, bare.child.pid!);
    const rows: [string, typeof base][] = [['bare SDK echo (baseline)', base]];
    rows.push(['mandate whoami, Bearer', await load(`${mandate.url}/mcp/core`, bearer, 'whoami', sessions, mandate.child.pid!)]);
    rows.push(['mandate whoami, Basic', await load(`${mandate.url}/mcp/core`, basic, 'whoami', sessions, mandate.child.pid!)]);
    for (const [label, r] of rows) {
      console.log(
        `${label.padEnd(34)} ${String(sessions).padStart(8)} ${r.rate.toFixed(0).padStart(8)} ${`${(r.rate / base.rate).toFixed(2)}x`.padStart(6)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${`${(r.p99 / base.p99).toFixed(2)}x`.padStart(9)} ${r.cpuUs.toFixed(0).padStart(10)}`,
      );
    }
  }
  const bareIdle = await idleMemory(`${bare.url}/mcp`, {}, bare.child.pid!);
  const mandateIdle = await idleMemory(`${mandate.url}/mcp/core`, bearer, mandate.child.pid!);
  console.log(`\nidle memory per open session (${IDLE_SESSIONS} sessions): bare SDK ${(bareIdle / 1024).toFixed(1)} KiB, mandate ${(mandateIdle / 1024).toFixed(1)} KiB (its sessions are database rows)`);
  console.log('targets: throughput >= 0.70x the bare server for Bearer and Basic, p99 <= 2x');
} finally {
  for (const child of servers) child.kill('SIGTERM');
  await cluster.stop();
}
