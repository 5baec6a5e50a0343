// The gateway: a tool call through Mandate's `mandate serve` (/mcp/gateway, on PostgreSQL) to an
// installed remote MCP server, against the same call made directly to that server, measured in the
// same run: 1 and 16 concurrent sessions of one user, BENCH_SECONDS each (default 10). Mandate's own
// whoami is shown too: what a Mandate call costs without an upstream. Prints ratios and the
// latency the gateway adds at p50.
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import { load, pinned, SECONDS, start } from './http-load.ts';

const cluster = await startCluster();
const servers: ChildProcess[] = [];
try {
  const env = { DATABASE_URL: cluster.url, MANDATE_LOG_LEVEL: 'warn', MANDATE_GATEWAY_ALLOW_NETWORKS: 'loopback', MANDATE_GATEWAY_ALLOW_HTTP: 'true' };
  const echo = await start(['bench/fixtures/http-echo-server.mjs'], {}, /(http:\/\/[\d.:]+)/);
  servers.push(echo.child);

  const quiet = createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) });
  const runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  const system = { kind: 'system' as const, name: 'bench' };
  for (const [op, input] of [
    [ops.createUser, { email: 'bench@bench.test', roles: ['developer'] }],
    [ops.createMcpCatalogEntry, { name: 'echo', transport: 'remote', url: `${echo.url}/mcp` }],
    [ops.installMcpServer, { catalog_id: 'echo', scope: 'org' }],
  ] as [AnyOperation, Record<string, unknown>][]) {
    const result = await runtime.runner.run(op, system, input);
    if (!result.ok) throw result.error;
  }
  const em = runtime.db.orm.em.fork();
  const secret = generateApiToken();
  em.create(ApiToken, { user: await em.findOneOrFail(User, { email: 'bench@bench.test' }), name: 'bench', prefix: secret.prefix, hash: secret.hash, scopes: null, expiresAt: null });
  await em.flush();
  await runtime.close();

  const mandate = await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], env, /listening on (http:\/\/[\d.:]+)/);
  servers.push(mandate.child);
  const bearer = { authorization: `Bearer ${secret.raw}` };
  const gatewayTool = 'echo.org__echo';

  // Warm both (JIT, pools, the upstream session) before anything is reported.
  await load(`${echo.url}/mcp`, {}, 'echo', 4, echo.child.pid!, 3);
  await load(`${mandate.url}/mcp/gateway`, bearer, gatewayTool, 4, mandate.child.pid!, 5);
  await load(`${mandate.url}/mcp/core`, bearer, 'whoami', 4, mandate.child.pid!, 3);

  console.log(`gateway on PostgreSQL, ${SECONDS} s per row${pinned ? ', servers on core 1, load on core 0' : ''}; ratios against calling the echo server directly\n`);
  console.log(`${'path'.padEnd(36)} ${'sessions'.padStart(8)} ${'req/s'.padStart(8)} ${'ratio'.padStart(6)} ${'p50 ms'.padStart(7)} ${'added p50 ms'.padStart(12)} ${'p99 ms'.padStart(7)}`);
  for (const sessions of [1, 16]) {
    const direct = await load(`${echo.url}/mcp`, {}, 'echo', sessions, echo.child.pid!);
    const rows: [string, typeof direct][] = [
      ['direct to the echo server (baseline)', direct],
      ['through the Mandate gateway', await load(`${mandate.url}/mcp/gateway`, bearer, gatewayTool, sessions, mandate.child.pid!)],
      ['mandate whoami (no upstream)', await load(`${mandate.url}/mcp/core`, bearer, 'whoami', sessions, mandate.child.pid!)],
    ];
    for (const [label, r] of rows) {
      console.log(
        `${label.padEnd(36)} ${String(sessions).padStart(8)} ${r.rate.toFixed(0).padStart(8)} ${`${(r.rate / direct.rate).toFixed(2)}x`.padStart(6)} ${r.p50.toFixed(2).padStart(7)} ${(r.p50 - direct.p50).toFixed(2).padStart(12)} ${r.p99.toFixed(2).padStart(7)}`,
      );
    }
  }
  console.log('\ntarget: the gateway adds <= 1 ms at p50 over the direct call');
} finally {
  for (const child of servers) child.kill('SIGTERM');
  await cluster.stop();
}
