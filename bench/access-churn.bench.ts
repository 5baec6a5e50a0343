// One user's calls while other users' access changes: `whoami` of user B over Streamable HTTP at
// 1 and 32 sessions (PostgreSQL, `mandate serve`), first with nothing else happening (the
// baseline), then while an admin starts and ends agent sessions (BENCH_CHANGES_PER_SECOND access
// changes a second, default 10: each start and each end is one), made once by another instance
// and once through the server itself. Load by wrk where it is installed (scripts/install-wrk.sh).
// Ratios against the baseline of the same run; the server's CPU time per request too.
import type { ChildProcess } from 'node:child_process';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime, type Runtime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { generateApiToken } from '../lib/identity/tokens.ts';
import type { UserCaller } from '../lib/identity/caller.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import { hasWrk, load, pinned, SECONDS, SERVER_WARMUP_SECONDS, start, WARMUP_SECONDS, wrkLoad } from './http-load.ts';

const CHANGES_PER_SECOND = Number(process.env.BENCH_CHANGES_PER_SECOND ?? 10);

/** One agent session started and ended: two access changes. */
type Cycle = () => Promise<void>;

/** Made by another instance (this process's own runtime), as in a fleet behind a load balancer. */
const elsewhere = (runtime: Runtime, admin: UserCaller): Cycle => async () => {
  const agent = await runtime.runner.run(ops.startAgentSession, admin, { role: 'developer' });
  if (!agent.ok) throw agent.error;
  const ended = await runtime.runner.run(ops.endAgentSessionOp, admin, { agent_session_id: agent.value.agent_session.id });
  if (!ended.ok) throw ended.error;
};

/** Made through the server under load (REST), which then does the writes' work as well. */
const through = (base: string, token: string): Cycle => async () => {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const started = await fetch(`${base}/api/agent-sessions`, { method: 'POST', headers, body: JSON.stringify({ role: 'developer' }) });
  const body = (await started.json()) as { agent_session?: { id: string } };
  if (started.status !== 200 || !body.agent_session) throw new Error(`start_agent_session: HTTP ${started.status}`);
  const ended = await fetch(`${base}/api/agent-sessions/${body.agent_session.id}`, { method: 'DELETE', headers });
  await ended.arrayBuffer();
  if (ended.status !== 200) throw new Error(`end_agent_session: HTTP ${ended.status}`);
};

/** Starts and ends agent sessions at `perSecond` access changes a second until stopped. */
function churn(cycle: Cycle, perSecond: number) {
  let running = true;
  let changes = 0;
  const loop = (async () => {
    const started = performance.now();
    while (running) {
      await cycle();
      changes += 2;
      // Paced against the clock, so a slow change does not lower the rate.
      const due = started + (changes / perSecond) * 1000;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return changes;
    },
  };
}

const cluster = await startCluster();
const servers: ChildProcess[] = [];
let runtime: Runtime | undefined;
try {
  const env = { DATABASE_URL: cluster.url, MANDATE_LOG_LEVEL: 'warn' };
  // The in-process instance (the changes made elsewhere) says what went wrong, if anything does.
  const quiet = createLogger({ level: 'error' });
  runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  const system = { kind: 'system', name: 'bench' } as const;
  for (const [email, role] of [['b@bench.test', 'developer'], ['admin@bench.test', 'admin']] as const) {
    const created = await runtime.runner.run(ops.createUser, system, { email, roles: [role] });
    if (!created.ok) throw created.error;
  }
  const em = runtime.db.orm.em.fork();
  const b = await em.findOneOrFail(User, { email: 'b@bench.test' });
  const adminUser = await em.findOneOrFail(User, { email: 'admin@bench.test' });
  const admin: UserCaller = { kind: 'user', userId: adminUser.id, name: adminUser.name, email: adminUser.email, type: 'human' };
  const secret = generateApiToken();
  em.create(ApiToken, { user: b, name: 'bench', prefix: secret.prefix, hash: secret.hash, scopes: null, expiresAt: null });
  const adminSecret = generateApiToken();
  em.create(ApiToken, { user: adminUser, name: 'bench', prefix: adminSecret.prefix, hash: adminSecret.hash, scopes: null, expiresAt: null });
  await em.flush();

  const mandate = await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', '0'], env, /listening on (http:\/\/[\d.:]+)/);
  servers.push(mandate.child);
  const url = `${mandate.url}/mcp/core`;
  const bearer = { authorization: `Bearer ${secret.raw}` };
  await load(url, bearer, 'whoami', 4, mandate.child.pid!, SERVER_WARMUP_SECONDS - WARMUP_SECONDS);
  const measure = hasWrk ? wrkLoad : load;

  console.log(`whoami of user B, ${SECONDS} s per row${pinned ? ', server on core 1, load and changes on core 0' : ''}, load by ${hasWrk ? 'wrk' : 'a Node client (scripts/install-wrk.sh installs wrk, which costs the load core far less)'}; ratios against the same load with no access changes`);
  console.log('changes made elsewhere: by another instance (this process); through the server: over its REST API, so it does their work too\n');
  console.log(`${'load'.padEnd(52)} ${'sessions'.padStart(8)} ${'req/s'.padStart(8)} ${'ratio'.padStart(6)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'p99 ratio'.padStart(9)} ${'CPU us/req'.padStart(10)} ${'CPU ratio'.padStart(9)}`);
  for (const sessions of [1, 32]) {
    const base = await measure(url, bearer, 'whoami', sessions, mandate.child.pid!);
    const rows: [string, typeof base][] = [['no access changes (baseline)', base]];
    for (const [where, cycle] of [['elsewhere', elsewhere(runtime, admin)], ['through the server', through(mandate.url, adminSecret.raw)]] as const) {
      const changes = churn(cycle, CHANGES_PER_SECOND);
      const changeStarted = performance.now();
      const busy = await measure(url, bearer, 'whoami', sessions, mandate.child.pid!);
      const made = await changes.stop();
      rows.push([`others' access changing ${where}, ${(made / ((performance.now() - changeStarted) / 1000)).toFixed(1)}/s`, busy]);
    }
    for (const [label, r] of rows) {
      console.log(
        `${label.padEnd(52)} ${String(sessions).padStart(8)} ${r.rate.toFixed(0).padStart(8)} ${`${(r.rate / base.rate).toFixed(2)}x`.padStart(6)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${`${(r.p99 / base.p99).toFixed(2)}x`.padStart(9)} ${r.cpuUs.toFixed(0).padStart(10)} ${`${(r.cpuUs / base.cpuUs).toFixed(2)}x`.padStart(9)}`,
      );
    }
  }
  console.log('\ntarget: >= 0.9x the baseline at 32 sessions while others\' access changes 10 times a second');
} finally {
  for (const child of servers) child.kill('SIGTERM');
  await runtime?.close();
  await cluster.stop();
}
