// MCP over Streamable HTTP: Mandate's `mandate serve` (whoami, with Bearer and with Basic) against
// a bare @modelcontextprotocol/sdk Streamable HTTP echo server measured in the same run.
// Each: BENCH_SECONDS (default 10) at 1 and at 32 concurrent sessions, one call at a time per
// session; throughput, p50, p99, and the server's CPU time per request (from /proc: steadier than
// throughput on this noisy machine). Then idle memory per open session (BENCH_IDLE_SESSIONS, 1,000).
// Servers run on core 1 and this load generator on core 0 when `taskset` exists.
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import { IDLE_SESSIONS, idleMemory, load, pinned, SECONDS, SERVER_WARMUP_SECONDS, start, WARMUP_SECONDS } from './http-load.ts';

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
