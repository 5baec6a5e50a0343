// An OAuth access token against a Mandate API token on the same `mandate serve`: `tools/call
// whoami` on /mcp/core at 1 and 32 sessions, BENCH_SECONDS (default 10) per row, the two
// interleaved over BENCH_ROUNDS rounds (default 5, the order alternating) so drift on this noisy
// machine falls on both; medians of throughput and of the server's CPU per request, and their ratio.
import type { ChildProcess } from 'node:child_process';
import { Writable } from 'node:stream';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import * as ops from '../lib/ops/index.ts';
import { startCluster } from '../test/helpers/pg-cluster.ts';
import { freePort } from '../test/helpers/oauth.ts';
import { authorize, Browser, pkce, register, tokenRequest } from '../test/helpers/oauth-flow.ts';
import { load, pinned, SECONDS, SERVER_WARMUP_SECONDS, start, WARMUP_SECONDS } from './http-load.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const cluster = await startCluster();
const servers: ChildProcess[] = [];
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = { DATABASE_URL: cluster.url, MANDATE_LOG_LEVEL: 'warn', MANDATE_PUBLIC_URL: base };
  const password = 'bench password 1';
  const email = 'oauth-bench@bench.test';
  const quiet = createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) });
  const runtime = await openRuntime(loadConfig(env), { command: 'bench', log: quiet });
  const created = await runtime.runner.run(ops.createUser, { kind: 'system', name: 'bench' }, { email, password, roles: ['developer'] });
  if (!created.ok) throw created.error;
  const userId = (created.value as { id: string }).id;
  const minted = await runtime.runner.run(ops.createTokenForUser, { kind: 'system', name: 'bench' }, { user_id: userId, name: 'bench' });
  if (!minted.ok) throw minted.error;
  await runtime.close();

  const mandate = await start(['--disable-warning=ExperimentalWarning', 'bin/mandate.js', 'serve', '--port', String(port)], env, /listening on (http:\/\/[\d.:]+)/);
  servers.push(mandate.child);
  // The OAuth token, the way a client gets one: registration, sign-in and consent, code exchange.
  const callback = 'http://127.0.0.1:9/callback';
  const client = await register(base, { client_name: 'bench', redirect_uris: [callback], token_endpoint_auth_method: 'none' });
  const clientId = String(client.body.client_id);
  const { verifier, challenge } = pkce();
  const landed = await authorize(new Browser(base), { client_id: clientId, redirect_uri: callback, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email, password });
  const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: landed.searchParams.get('code')!, redirect_uri: callback, code_verifier: verifier, client_id: clientId });
  const oauth = { authorization: `Bearer ${String(exchanged.body.access_token)}` };
  const apiToken = { authorization: `Bearer ${(minted.value as { token: string }).token}` };

  const url = `${mandate.url}/mcp/core`;
  for (const auth of [apiToken, oauth]) await load(url, auth, 'whoami', 4, mandate.child.pid!, SERVER_WARMUP_SECONDS / 2 - WARMUP_SECONDS);

  console.log(`whoami on /mcp/core, ${SECONDS} s per row, ${ROUNDS} interleaved rounds${pinned ? ', server on core 1, load on core 0' : ''}; medians\n`);
  console.log(`${'sessions'.padStart(8)} ${'mnd_ req/s'.padStart(11)} ${'OAuth req/s'.padStart(12)} ${'ratio'.padStart(6)} ${'mnd_ CPU us'.padStart(12)} ${'OAuth CPU us'.padStart(13)} ${'CPU ratio'.padStart(10)} ${'mnd_ p99'.padStart(9)} ${'OAuth p99'.padStart(10)}`);
  const rounds: string[] = [];
  for (const sessions of [1, 32]) {
    const runs: Record<'mnd' | 'oauth', Awaited<ReturnType<typeof load>>[]> = { mnd: [], oauth: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order: ('mnd' | 'oauth')[] = round % 2 === 0 ? ['mnd', 'oauth'] : ['oauth', 'mnd'];
      for (const kind of order) runs[kind].push(await load(url, kind === 'mnd' ? apiToken : oauth, 'whoami', sessions, mandate.child.pid!));
    }
    const rate = (kind: 'mnd' | 'oauth') => median(runs[kind].map((r) => r.rate));
    const cpu = (kind: 'mnd' | 'oauth') => median(runs[kind].map((r) => r.cpuUs));
    const p99 = (kind: 'mnd' | 'oauth') => median(runs[kind].map((r) => r.p99));
    console.log(
      `${String(sessions).padStart(8)} ${rate('mnd').toFixed(0).padStart(11)} ${rate('oauth').toFixed(0).padStart(12)} ${`${(rate('oauth') / rate('mnd')).toFixed(2)}x`.padStart(6)} ${cpu('mnd').toFixed(0).padStart(12)} ${cpu('oauth').toFixed(0).padStart(13)} ${`${(cpu('oauth') / cpu('mnd')).toFixed(2)}x`.padStart(10)} ${p99('mnd').toFixed(2).padStart(9)} ${p99('oauth').toFixed(2).padStart(10)}`,
    );
    rounds.push(`${sessions} sessions, req/s by round (mnd_ / OAuth): ${runs.mnd.map((r, i) => `${r.rate.toFixed(0)}/${runs.oauth[i]!.rate.toFixed(0)}`).join('  ')}`);
  }
  console.log(`\n${rounds.join('\n')}`);
  console.log('target: OAuth throughput >= 0.95x the API token\'s');
} finally {
  for (const child of servers) child.kill('SIGTERM');
  await cluster.stop();
}
