import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import * as ops from '../lib/ops/index.ts';
import { User } from '../lib/db/entities/index.ts';
import { makeToken } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, TEST_DB } from './helpers/db.ts';
import { processDatabase, type ProcessDatabase } from './helpers/stdio.ts';
import { startServe, type ServeProcess } from './helpers/serve.ts';

// A real `mandate serve` process (two of them on PostgreSQL), driven by the official SDK client
// and plain HTTP, with Basic and Bearer credentials.

let db: ProcessDatabase;
let serve: ServeProcess;
const password = recordSecret('serve test password 1');
const people: Record<string, { id: string; email: string; token: string; tokenId: string }> = {};

before(async () => {
  db = await processDatabase();
  await db.use(async (rt) => {
    for (const [name, roles] of [['admin', ['admin']], ['dev', ['developer']], ['revoked', ['developer']], ['disabled', ['developer']], ['target', ['developer']]] as const) {
      const email = `${name}-serve@example.test`;
      const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email, password, roles: [...roles] });
      assert.ok(created.ok);
      const id = (created.value as { id: string }).id;
      const { token, raw } = await makeToken(rt, await rt.db.orm.em.fork().findOneOrFail(User, { id }));
      people[name] = { id, email, token: recordSecret(raw), tokenId: token.id };
    }
    await rt.runner.run(ops.revokeUserToken, { kind: 'system', name: 'test' }, { user_id: people.revoked!.id, token_id: people.revoked!.tokenId });
    await rt.runner.run(ops.deactivateUser, { kind: 'system', name: 'test' }, { user_id: people.disabled!.id });
  });
  serve = await startServe({ ...db.env, MANDATE_TRUST_PROXY: 'true' });
});
after(async () => {
  await serve?.stop();
  await db.dispose();
  const logs = serve.logs();
  for (const person of Object.values(people)) assert.ok(!logs.includes(person.token), 'no token in the server log');
  assert.ok(!logs.includes(password), 'no password in the server log');
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (email: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${email}:${secret}`).toString('base64')}` });
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const whoami = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } });

async function rpc(url: string, headers: Record<string, string>, body: object) {
  const response = await fetch(`${url}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  keepArtifact('http-response', text);
  return { status: response.status, session: response.headers.get('mcp-session-id'), text };
}

async function sdkWhoami(url: string, headers: Record<string, string>) {
  const client = new Client({ name: 'serve-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers } }));
  try {
    return (await client.callTool({ name: 'whoami', arguments: {} })).structuredContent as { user: { id: string } };
  } finally {
    await client.close();
  }
}

async function auditCount(url: string, actorId: string): Promise<number> {
  const response = await fetch(`${url}/api/admin/audit?actor_id=${actorId}&limit=100`, { headers: bearer(people.admin!.token) });
  return ((await response.json()) as { items: unknown[] }).items.length;
}

test('the SDK client over Streamable HTTP: Basic and Bearer both work', async () => {
  // A failure says what the server logged (its lines carry no secret: the sweep at the end checks).
  const withLogs = <T>(call: Promise<T>) => call.catch((error: unknown) => assert.fail(`${(error as Error).message}\nserver log (errors):\n${serve.logs().split('\n').filter((line) => line.includes('"level":50')).slice(-5).join('\n')}`));
  assert.equal((await withLogs(sdkWhoami(serve.url, bearer(people.dev!.token)))).user.id, people.dev!.id);
  assert.equal((await withLogs(sdkWhoami(serve.url, basic(people.dev!.email, password)))).user.id, people.dev!.id);
});

test('wrong password, unknown user, revoked token, disabled user: 401', async () => {
  const cases = [basic(people.revoked!.email, 'wrong'), basic('nobody@example.test', password), bearer(people.revoked!.token), basic(people.disabled!.email, password)];
  for (const headers of cases) assert.equal((await rpc(serve.url, { ...headers, 'x-forwarded-for': '192.0.2.10' }, initialize)).status, 401);
  const client = new Client({ name: 'serve-test', version: '1.0.0' });
  await assert.rejects(client.connect(new StreamableHTTPClientTransport(new URL(`${serve.url}/mcp`), { requestInit: { headers: bearer(people.revoked!.token) } })));
});

test("a session id replayed with another user's credentials, or with none: 401 and nothing executed", async () => {
  const init = await rpc(serve.url, bearer(people.target!.token), initialize);
  assert.equal(init.status, 200);
  const session = init.session!;
  const before = await auditCount(serve.url, people.dev!.id);
  assert.equal((await rpc(serve.url, { ...bearer(people.dev!.token), 'mcp-session-id': session }, whoami(2))).status, 401);
  assert.equal((await rpc(serve.url, { 'mcp-session-id': session }, whoami(3))).status, 401);
  assert.equal(await auditCount(serve.url, people.dev!.id), before, 'nothing ran as the intruder');
  assert.equal((await rpc(serve.url, { ...bearer(people.target!.token), 'mcp-session-id': session }, whoami(4))).status, 200);
});

test('the sixth bad password in 60 s is 429 even with the right password, and another IP for the same email is blocked too', async () => {
  const email = people.target!.email;
  for (let i = 0; i < 5; i++) {
    const answer = await rpc(serve.url, { ...basic(email, recordSecret(`bad guess ${i}`)), 'x-forwarded-for': '198.51.100.7' }, initialize);
    assert.equal(answer.status, 401);
  }
  const right = await rpc(serve.url, { ...basic(email, password), 'x-forwarded-for': '198.51.100.7' }, initialize);
  assert.equal(right.status, 429);
  const elsewhere = await rpc(serve.url, { ...basic(email, password), 'x-forwarded-for': '203.0.113.99' }, initialize);
  assert.equal(elsewhere.status, 429, 'per email, whatever the IP');
  assert.equal((await rpc(serve.url, { ...basic(people.dev!.email, password), 'x-forwarded-for': '203.0.113.99' }, initialize)).status, 200);
});

test('two instances on one PostgreSQL behave as one service', { skip: TEST_DB !== 'postgres' && 'the embedded database serves one process' }, async () => {
  const second = await startServe({ ...db.env, MANDATE_TRUST_PROXY: 'true' });
  try {
    // A session initialised on A continues on B.
    const init = await rpc(serve.url, bearer(people.dev!.token), initialize);
    const onB = await rpc(second.url, { ...bearer(people.dev!.token), 'mcp-session-id': init.session! }, whoami(2));
    assert.equal(onB.status, 200, onB.text);
    assert.match(onB.text, new RegExp(people.dev!.id));
    // The failed-login limit is shared.
    const email = people.admin!.email;
    for (let i = 0; i < 5; i++) await rpc(serve.url, { ...basic(email, recordSecret(`shared guess ${i}`)), 'x-forwarded-for': '192.0.2.50' }, initialize);
    assert.equal((await rpc(second.url, { ...basic(email, password), 'x-forwarded-for': '192.0.2.51' }, initialize)).status, 429);
    // A revocation on A is enforced on B at the next request.
    const mine = await fetch(`${second.url}/api/me/tokens`, { method: 'POST', headers: { ...bearer(people.dev!.token), 'content-type': 'application/json' }, body: JSON.stringify({ name: 'two-instance' }) });
    const created = (await mine.json()) as { id: string; token: string };
    recordSecret(created.token);
    assert.equal((await rpc(second.url, bearer(created.token), initialize)).status, 200);
    const revoked = await fetch(`${serve.url}/api/me/tokens/${created.id}`, { method: 'DELETE', headers: bearer(people.dev!.token) });
    assert.equal(revoked.status, 200);
    assert.equal((await rpc(second.url, bearer(created.token), initialize)).status, 401);
  } finally {
    await second.stop();
  }
});

test('on Node 22, mandate serve replaces itself (same pid) with AsyncContextFrame on; where that is the default, it does not', { skip: !existsSync('/proc/self/cmdline') && 'needs /proc to read the server\'s command line' }, () => {
  const args = readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8').split('\0');
  // The hook-based AsyncLocalStorage (Node 22 without the flag) is the one that has `_enable`.
  const needsFlag = '_enable' in AsyncLocalStorage.prototype && !process.execArgv.includes('--experimental-async-context-frame');
  assert.equal(args.includes('--experimental-async-context-frame'), needsFlag, args.join(' '));
  assert.ok(args.includes('serve'), 'the same command, re-executed in place');
});
