// Core's whoami over stdio against a bare @modelcontextprotocol/sdk echo server (plain JavaScript,
// one tool), both spawned and driven by the SDK's own client in this run:
//   spawn -> first result   median of BENCH_SPAWNS spawns (connect, initialize, one tools/call)
//   sequential calls/s      one session, one call at a time, BENCH_SECONDS long
// Mandate runs on PostgreSQL (a throwaway cluster started here), on the embedded database, and in
// remote mode (MANDATE_URL: no database in the process, each call a REST request to a local
// `mandate serve` on the same cluster, so the HTTP hop is counted), as
// `node servers/core.js` (the TypeScript sources in a checkout) and `node dist/servers/core.js`
// (compiled; npm run build). Both use Node's compile cache, so the first spawn warms it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import { User, Role, RoleAssignment } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import { ApiToken } from '../lib/db/entities/index.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SPAWNS = Number(process.env.BENCH_SPAWNS ?? 10);
const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface Target {
  label: string;
  args: string[];
  env: Record<string, string>;
  tool: string;
}

async function seedAdmin(env: Record<string, string>): Promise<string> {
  const quiet = createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) });
  const runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  try {
    const em = runtime.db.orm.em.fork();
    const user = em.create(User, { name: 'bench', email: 'bench@bench.test', displayName: 'Bench', type: 'human', active: true });
    em.create(RoleAssignment, { user, role: await em.findOneOrFail(Role, { name: 'admin' }), project: null });
    const secret = generateApiToken();
    em.create(ApiToken, { user, name: 'bench', prefix: secret.prefix, hash: secret.hash, scopes: null, expiresAt: null });
    await em.flush();
    return secret.raw;
  } finally {
    await runtime.close();
  }
}

/** A local `mandate serve` on the cluster, for the remote-mode rows; resolves once it listens. */
async function startServe(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', MANDATE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('mandate serve did not start')), 30_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`mandate serve exited with ${code}`)));
  });
  return { url, child };
}

async function connect(target: Target) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--disable-warning=ExperimentalWarning', ...target.args],
    env: { PATH: process.env.PATH ?? '', ...target.env },
    cwd: ROOT,
    stderr: 'ignore',
  });
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

async function call(client: Client, tool: string) {
  const result = await client.callTool({ name: tool, arguments: {} });
  if (result.isError) throw new Error(`${tool} failed: ${JSON.stringify(result.content)}`);
}

async function spawnToFirstResult(target: Target): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < SPAWNS; i++) {
    const started = performance.now();
    const client = await connect(target);
    await call(client, target.tool);
    times.push(performance.now() - started);
    await client.close();
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function sequentialRate(target: Target): Promise<number> {
  const client = await connect(target);
  try {
    for (let i = 0; i < 200; i++) await call(client, target.tool);
    const deadline = performance.now() + SECONDS * 1000;
    let count = 0;
    const started = performance.now();
    while (performance.now() < deadline) {
      await call(client, target.tool);
      count++;
    }
    return count / ((performance.now() - started) / 1000);
  } finally {
    await client.close();
  }
}

const cluster = await startCluster();
const dataDir = mkdtempSync(join(tmpdir(), 'mandate-bench-'));
let serve: ChildProcess | undefined;
try {
  const pgEnv = { DATABASE_URL: cluster.url };
  const embeddedEnv = { MANDATE_DATA_DIR: dataDir };
  const pgToken = await seedAdmin(pgEnv);
  const embeddedToken = await seedAdmin(embeddedEnv);
  const entries: [string, string][] = [['src', 'servers/core.js']];
  if (existsSync(join(ROOT, 'dist/servers/core.js'))) entries.unshift(['dist', 'dist/servers/core.js']);
  else console.log('(dist/ not built: run npm run build first to measure the compiled servers too)');

  const baseline: Target = { label: 'bare SDK echo (baseline)', args: ['bench/fixtures/echo-server.mjs'], env: {}, tool: 'echo' };
  const targets: Target[] = [baseline];
  const remote = await startServe(pgEnv);
  serve = remote.child;
  for (const [kind, entry] of entries) {
    targets.push({ label: `core whoami, PostgreSQL, ${kind}`, args: [entry], env: { ...pgEnv, MANDATE_TOKEN: pgToken }, tool: 'whoami' });
    targets.push({ label: `core whoami, embedded, ${kind}`, args: [entry], env: { ...embeddedEnv, MANDATE_TOKEN: embeddedToken }, tool: 'whoami' });
    targets.push({ label: `core whoami, remote, ${kind}`, args: [entry], env: { MANDATE_URL: remote.url, MANDATE_TOKEN: pgToken }, tool: 'whoami' });
  }

  console.log(`stdio: spawn -> first result (median of ${SPAWNS}), sequential calls/s over ${SECONDS} s; ratios against the baseline\n`);
  console.log(`${'server'.padEnd(36)} ${'first result'.padStart(12)} ${'ratio'.padStart(7)} ${'calls/s'.padStart(9)} ${'ratio'.padStart(7)}`);
  let base: { first: number; rate: number } | undefined;
  for (const target of targets) {
    const first = await spawnToFirstResult(target);
    const rate = await sequentialRate(target);
    base ??= { first, rate };
    console.log(
      `${target.label.padEnd(36)} ${`${first.toFixed(0)} ms`.padStart(12)} ${`${(first / base.first).toFixed(2)}x`.padStart(7)} ${rate.toFixed(0).padStart(9)} ${`${(rate / base.rate).toFixed(2)}x`.padStart(7)}`,
    );
  }
  console.log('\ntargets: first result <= 2x the baseline on PostgreSQL, <= 3x embedded, <= 1.3x remote; calls/s >= 0.5x on PostgreSQL and embedded, >= 0.7x remote');
} finally {
  serve?.kill('SIGTERM');
  await cluster.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
