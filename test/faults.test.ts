import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { Writable } from 'node:stream';
import { TEST_DB, recordSecret } from './helpers/db.ts';
import { startCluster, type Cluster } from './helpers/pg-cluster.ts';
import { startServe, type ServeProcess } from './helpers/serve.ts';
import { hasPgBouncer, startPgBouncer, type Bouncer } from './helpers/pgbouncer.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { loadConfig } from '../lib/config.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';

// Faults on PostgreSQL, each against `mandate serve` processes on a cluster of this file's own (it
// is stopped, frozen and restarted here): the database away, an instance killed, a drain, an
// exhausted pool, and PgBouncer in transaction pooling mode.

const skip = TEST_DB !== 'postgres' && 'faults of a PostgreSQL server; the embedded database has none of these';
const quiet = () => createLogger({ level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: Cluster;
let databaseUrl: string;
let admin: { id: string; token: string };
const serves: ServeProcess[] = [];

before(async () => {
  if (skip) return;
  cluster = await startCluster();
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  await client.query('create database faults');
  await client.end();
  databaseUrl = cluster.url.replace(/\/postgres$/, '/faults');
  const runtime = await openRuntime(loadConfig({ DATABASE_URL: databaseUrl }), { command: 'test', log: quiet() });
  const user = await makeUser(runtime, { email: 'fault-admin@example.test', roles: ['admin'] });
  admin = { id: user.id, token: recordSecret((await makeToken(runtime, user)).raw) };
  await runtime.close();
});
after(async () => {
  await Promise.all(serves.map((s) => s.stop()));
  cluster?.stop();
});

async function serve(env: Record<string, string> = {}, url = databaseUrl) {
  const started = await startServe({ DATABASE_URL: url, MANDATE_LOG_LEVEL: 'info', MANDATE_DB_CONNECT_TIMEOUT_MS: '1000', ...env });
  serves.push(started);
  return started;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

interface Answer {
  started: number;
  ms: number;
  status: number | 'network';
  code?: string;
  retryAfter?: string | null;
}

async function call(base: string, method: string, path: string, body?: unknown, token = admin.token): Promise<Answer & { body?: any }> {
  const started = performance.now();
  try {
    const response = await fetch(`${base}${path}`, { method, headers: bearer(token), ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(30_000) });
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : undefined;
    return { started, ms: performance.now() - started, status: response.status, code: parsed?.error?.code, retryAfter: response.headers.get('retry-after'), body: parsed };
  } catch {
    return { started, ms: performance.now() - started, status: 'network' };
  }
}

/** Sessions calling whoami and list_users in a loop until stopped; every answer is kept. */
function steadyLoad(base: string, sessions: number) {
  const answers: Answer[] = [];
  let running = true;
  const loops = Array.from({ length: sessions }, async (_, i) => {
    while (running) {
      answers.push(await call(base, 'GET', i % 2 ? '/api/me' : '/api/admin/users?limit=5'));
      await sleep(20);
    }
  });
  return {
    answers,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

const dbClient = async () => {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  return client;
};

describe('the database goes away and comes back', { skip }, () => {
  test('stopped: every call is a fast 503 with Retry-After and /ready says not ready; back: service resumes by itself within seconds', async () => {
    const server = await serve();
    const load = steadyLoad(server.url, 4);
    await sleep(1000);
    const halting = performance.now();
    cluster.halt();
    const halted = performance.now();
    await sleep(2500);
    const ready = await fetch(`${server.url}/ready`);
    assert.equal(ready.status, 503, '/ready: not ready while the database is down');
    assert.equal(((await ready.json()) as { error: { code: string } }).error.code, 'unavailable');
    const resuming = performance.now();
    cluster.resume();
    const resumed = performance.now();
    await sleep(5000);
    await load.stop();

    const { answers } = load;
    const before = answers.filter((a) => a.started + a.ms < halting);
    const during = answers.filter((a) => a.started > halted && a.started + a.ms < resuming);
    const afterwards = answers.filter((a) => a.started > resumed);
    assert.ok(before.length > 10 && before.every((a) => a.status === 200), 'all served before the outage');
    assert.ok(during.length > 10, `calls were made during the outage (${during.length})`);
    assert.deepEqual([...new Set(during.map((a) => `${a.status} ${a.code}`))], ['503 unavailable'], 'during it: 503 unavailable, never a 500');
    assert.ok(during.every((a) => a.retryAfter !== null), 'with Retry-After');
    assert.ok(answers.every((a) => a.status === 200 || a.status === 503), `only 200s and 503s: ${[...new Set(answers.map((a) => a.status))]}`);
    const slowest = Math.max(...answers.map((a) => a.ms));
    assert.ok(slowest < 5000, `nothing hangs: the slowest call took ${Math.round(slowest)} ms`);
    const firstServed = afterwards.find((a) => a.status === 200);
    assert.ok(firstServed, 'service resumed');
    const recovery = firstServed.started + firstServed.ms - resumed;
    assert.ok(recovery < 5000, `resumed ${Math.round(recovery)} ms after PostgreSQL was back`);
    const settled = afterwards.filter((a) => a.started > firstServed.started + 1000);
    assert.ok(settled.length > 10 && settled.every((a) => a.status === 200), 'and stays up');
    assert.equal((await fetch(`${server.url}/ready`)).status, 200);
  });

  test('frozen (a hung host: nothing refuses, nothing answers): calls are 503 at the deadline, not hung', async () => {
    const server = await serve({ MANDATE_DB_QUERY_TIMEOUT_MS: '1500' });
    assert.equal((await call(server.url, 'GET', '/api/admin/users?limit=1')).status, 200);
    cluster.freeze();
    try {
      const answers = await Promise.all([call(server.url, 'GET', '/api/admin/users?limit=1'), call(server.url, 'GET', '/api/me')]);
      for (const answer of answers) {
        assert.equal(answer.status, 503, JSON.stringify(answer));
        assert.ok(answer.ms < 4000, `answered in ${Math.round(answer.ms)} ms\n${server.logs().slice(-3000)}`);
      }
    } finally {
      cluster.thaw();
    }
    let back: Answer | undefined;
    for (let i = 0; i < 50 && back?.status !== 200; i++) {
      back = await call(server.url, 'GET', '/api/admin/users?limit=1');
      if (back.status !== 200) await sleep(100);
    }
    assert.equal(back?.status, 200, 'and served again once it answers');
  });
});

describe('an instance dies', { skip }, () => {
  test('SIGKILL of one of two instances with writes in flight: every acknowledged write is there, none is half-applied', async () => {
    const [a, b] = [await serve(), await serve()];
    const results: { email: string; via: 'a' | 'b'; answer: Awaited<ReturnType<typeof call>> }[] = [];
    let sent = 0;
    let killed = false;
    const writer = async (lane: number) => {
      while (sent < 80) {
        const i = sent++;
        const via = i % 2 ? 'b' : 'a';
        if (i === 30 && !killed) {
          killed = true;
          a.signal('SIGKILL');
        }
        const email = `killed-${i}@example.test`;
        const answer = await call(via === 'a' ? a.url : b.url, 'POST', '/api/admin/users', { email, roles: ['developer', 'viewer'] });
        results.push({ email, via, answer });
        void lane;
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, lane) => writer(lane)));
    assert.equal(await a.exited, null, 'A was killed');

    const acknowledged = results.filter((r) => r.answer.status === 200);
    const lostOnA = results.filter((r) => r.via === 'a' && r.answer.status === 'network');
    assert.ok(acknowledged.some((r) => r.via === 'a') && acknowledged.some((r) => r.via === 'b'), 'both served writes');
    assert.ok(lostOnA.length > 0, 'some writes to A were in flight or after its death');

    const client = await dbClient();
    try {
      const rows = (await client.query<{ id: string; email: string; roles: number; audited: number }>(
        `select u.id, u.email,
                (select count(*)::int from role_assignment ra where ra.user_id = u.id) as roles,
                (select count(*)::int from audit_event e where e.operation = 'create_user' and e.outcome = 'allowed' and e.target = 'user:' || u.id) as audited
           from app_user u where u.email like 'killed-%'`,
      )).rows;
      const byEmail = new Map(rows.map((row) => [row.email, row]));
      for (const write of acknowledged) {
        const row = byEmail.get(write.email);
        assert.ok(row, `acknowledged ${write.email} (via ${write.via}) is in the database`);
        assert.equal(row.id, write.answer.body.id);
      }
      for (const row of rows) {
        assert.equal(row.roles, 2, `${row.email}: both role assignments or none`);
        assert.equal(row.audited, 1, `${row.email}: its audit event committed with it`);
      }
    } finally {
      await client.end();
    }
  });

  test('SIGKILL mid-traffic: every call that was answered has its audit event, reads and refusals included', async () => {
    const server = await serve();
    const answered: string[] = [];
    let sent = 0;
    let killed = false;
    // Each lane calls until the instance is gone.
    const lane = async () => {
      for (;;) {
        const requestId = `kill-read-${sent++}`;
        // A read, a refusal (no such user) and an invalid input: none of them writes anything but its event.
        const path = ['/api/me', '/api/admin/users?limit=2', `/api/admin/users/${'0'.repeat(8)}-0000-7000-8000-${'0'.repeat(12)}`, '/api/admin/users?limit=-1'][sent % 4]!;
        try {
          const response = await fetch(`${server.url}${path}`, { headers: { ...bearer(admin.token), 'x-request-id': requestId }, signal: AbortSignal.timeout(10_000) });
          await response.arrayBuffer();
          answered.push(requestId);
        } catch {
          return;
        }
        if (answered.length === 200 && !killed) {
          killed = true;
          server.signal('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, () => lane()));
    assert.equal(await server.exited, null, 'it was killed');
    assert.ok(answered.length >= 200, `${answered.length} answered`);
    const client = await dbClient();
    try {
      const stored = new Set((await client.query<{ request_id: string }>('select request_id from audit_event where request_id = any($1)', [answered])).rows.map((row) => row.request_id));
      const missing = answered.filter((id) => !stored.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered calls have no audit event`);
    } finally {
      await client.end();
    }
  });

  test('SIGTERM drains: no new connections, the call in flight finishes, its audit event and the batched ones are written, then it exits', async () => {
    const server = await serve({ MANDATE_DRAIN_SECONDS: '5' });
    const target = (await call(server.url, 'POST', '/api/admin/users', { email: 'drained@example.test' })).body.id as string;
    assert.equal((await call(server.url, 'GET', '/api/me')).status, 200, 'a read whose audit event is batched');
    const blocker = await dbClient();
    await blocker.query('begin');
    await blocker.query('select 1 from app_user where id = $1 for update', [target]);
    const inFlight = call(server.url, 'PATCH', `/api/admin/users/${target}`, { display_name: 'Finished During The Drain' });
    await sleep(300);
    server.signal('SIGTERM');
    await sleep(300);
    const refused = await call(server.url, 'GET', '/health');
    assert.equal(refused.status, 'network', 'a new connection after SIGTERM is refused');
    await blocker.query('commit');
    await blocker.end();
    const finished = await inFlight;
    assert.equal(finished.status, 200, 'the call in flight finished');
    const exitedAt = performance.now();
    assert.equal(await server.exited, 0);
    assert.ok(performance.now() - exitedAt < 3000, 'and the process exited soon after');
    const client = await dbClient();
    try {
      const events = (await client.query<{ operation: string }>(`select operation from audit_event where actor_id = $1 and operation in ('whoami', 'update_user') order by at`, [admin.id])).rows;
      assert.deepEqual(events.map((e) => e.operation).slice(-2), ['whoami', 'update_user'], 'both audit events written before exit');
    } finally {
      await client.end();
    }
  });

  test('a call stuck past the drain does not keep the process alive: it exits within the bound, and the stuck write never lands', async () => {
    const server = await serve({ MANDATE_DRAIN_SECONDS: '1' });
    const target = (await call(server.url, 'POST', '/api/admin/users', { email: 'stuck@example.test' })).body.id as string;
    const blocker = await dbClient();
    await blocker.query('begin');
    await blocker.query('select 1 from app_user where id = $1 for update', [target]);
    const stuck = call(server.url, 'PATCH', `/api/admin/users/${target}`, { display_name: 'Never Written' });
    await sleep(300);
    const signalled = performance.now();
    server.signal('SIGTERM');
    await server.exited;
    const took = performance.now() - signalled;
    assert.ok(took < 1000 + 5000 + 1500, `exited ${Math.round(took)} ms after SIGTERM (drain 1 s + close 5 s)`);
    assert.equal((await stuck).status, 'network', 'the stuck call was cut off');
    await blocker.query('commit');
    const row = await blocker.query<{ display_name: string }>('select display_name from app_user where id = $1', [target]);
    assert.notEqual(row.rows[0]!.display_name, 'Never Written');
    await blocker.end();
  });
});

describe('the pool is exhausted', { skip }, () => {
  test('a call that cannot get a connection in time is a 503, not a pile-up; the pool frees, calls run again', async () => {
    const server = await serve({ MANDATE_DB_POOL_MAX: '2', MANDATE_DB_CONNECT_TIMEOUT_MS: '800' });
    const target = (await call(server.url, 'POST', '/api/admin/users', { email: 'pooled@example.test' })).body.id as string;
    assert.equal((await call(server.url, 'GET', '/api/admin/users?limit=1')).status, 200, 'warms the caches');
    const blocker = await dbClient();
    await blocker.query('begin');
    await blocker.query('select 1 from app_user where id = $1 for update', [target]);
    // Two writes wait on the lock, each holding one of the pool's two connections.
    const held = [1, 2].map((n) => call(server.url, 'PATCH', `/api/admin/users/${target}`, { display_name: `Holder ${n}` }));
    await sleep(400);
    const starved = await call(server.url, 'GET', '/api/admin/users?limit=1');
    assert.equal(starved.status, 503, JSON.stringify(starved));
    assert.equal(starved.code, 'unavailable');
    assert.ok(starved.retryAfter !== null);
    assert.ok(starved.ms < 3000, `answered in ${Math.round(starved.ms)} ms`);
    await blocker.query('commit');
    await blocker.end();
    assert.deepEqual((await Promise.all(held)).map((a) => a.status), [200, 200]);
    assert.equal((await call(server.url, 'GET', '/api/admin/users?limit=1')).status, 200);
  });
});

describe('behind PgBouncer in transaction pooling mode', { skip: skip || (!hasPgBouncer() && 'Debian\'s pgbouncer is not installed (scripts/install-pgbouncer.sh)') }, () => {
  let bouncer: Bouncer;
  let viaBouncer: string;
  before(async () => {
    bouncer = await startPgBouncer(cluster.port);
    const client = new pg.Client({ connectionString: cluster.url });
    await client.connect();
    await client.query('create database bounced');
    await client.end();
    viaBouncer = bouncer.urlFor(cluster.url.replace(/\/postgres$/, '/bounced'));
  });
  after(() => bouncer?.stop());

  test('migrations, sign-in, MCP and REST calls, writes, and an access change seen by a second instance at its next call', async () => {
    const runtime = await openRuntime(loadConfig({ DATABASE_URL: viaBouncer }), { command: 'test', log: quiet() });
    const boss = await makeUser(runtime, { email: 'bounced-admin@example.test', roles: ['admin'] });
    const bossToken = recordSecret((await makeToken(runtime, boss)).raw);
    await runtime.close();
    const [a, b] = [await serve({}, viaBouncer), await serve({}, viaBouncer)];

    const created = await call(a.url, 'POST', '/api/admin/users', { email: 'bounced@example.test', roles: ['developer'] }, bossToken);
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const minted = await call(a.url, 'POST', `/api/admin/users/${created.body.id}/tokens`, { name: 'bounced' }, bossToken);
    assert.equal(minted.status, 200, JSON.stringify(minted.body));
    const token = recordSecret(minted.body.token as string);
    assert.equal((await call(b.url, 'GET', '/api/me', undefined, token)).status, 200, 'the new token works on the other instance');
    const search = await call(b.url, 'GET', '/api/admin/users?search=bounced', undefined, bossToken);
    assert.deepEqual(search.body.items.map((u: { email: string }) => u.email).sort(), ['bounced-admin@example.test', 'bounced@example.test']);

    // MCP over Streamable HTTP through the bouncer: initialize, then a tool call on the session.
    const headers = { ...bearer(token), accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
    const init = await fetch(`${b.url}/mcp/core`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bouncer-test', version: '1' } } }) });
    assert.equal(init.status, 200);
    const session = init.headers.get('mcp-session-id')!;
    const whoami = await fetch(`${b.url}/mcp/core`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } }) });
    assert.match(await whoami.text(), /bounced@example\.test/);

    const revoked = await call(a.url, 'DELETE', `/api/admin/users/${created.body.id}/tokens/${minted.body.id}`, undefined, bossToken);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal((await call(b.url, 'GET', '/api/me', undefined, token)).status, 401, 'the revocation made on A is seen by B at once');
    const audit = await call(b.url, 'GET', `/api/admin/audit?actor_id=${boss.id}`, undefined, bossToken);
    assert.ok(audit.body.items.some((e: { operation: string }) => e.operation === 'revoke_user_token'));
  });
});

describe('which errors mean "the database is away"', () => {
  test('socket errors, connection-class SQLSTATEs, shutdowns and the driver\'s timeouts are a 503 with Retry-After; a failed statement is not', async () => {
    const { databaseUnavailable } = await import('../lib/errors.ts');
    const away = [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
      Object.assign(new Error('the database system is starting up'), { code: '57P03' }),
      Object.assign(new Error('connection failure'), { code: '08006' }),
      new Error('timeout exceeded when trying to connect'),
      new Error('Query read timeout'),
      Object.assign(new Error('wrapped'), { cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }) }),
    ];
    for (const error of away) {
      const mapped = databaseUnavailable(error);
      assert.equal(mapped?.code, 'unavailable', error.message);
      assert.equal(mapped?.retryAfterSeconds, 2);
    }
    for (const error of [Object.assign(new Error('duplicate key value violates unique constraint'), { code: '23505' }), Object.assign(new Error('syntax error'), { code: '42601' }), new Error('boom')]) {
      assert.equal(databaseUnavailable(error), null, error.message);
    }
  });
});
