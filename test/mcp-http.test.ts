import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import * as ops from '../lib/ops/index.ts';
import { makeToken } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { ADMIN_TOOLS, ALL_CORE_ADMIN_TOOLS, PM_TOOLS } from './helpers/people.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';

let rt: TestRuntime;
let server: Server;
let base: string;
const password = recordSecret('http test password 1');
let alice: { id: string; email: string; token: string; tokenId: string };
let bob: { id: string; email: string; token: string; tokenId: string };

async function person(email: string, roles: string[]) {
  const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email, password, roles });
  assert.ok(created.ok);
  const id = (created.value as { id: string }).id;
  const user = await rt.db.orm.em.fork().findOneOrFail((await import('../lib/db/entities/index.ts')).User, { id });
  const { token, raw } = await makeToken(rt, user);
  return { id, email, token: recordSecret(raw), tokenId: token.id };
}

before(async () => {
  rt = await testRuntime();
  alice = await person('alice-http@example.test', ['admin']);
  bob = await person('bob-http@example.test', ['developer']);
  server = createHttpServer(rt);
  base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (email: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${email}:${secret}`).toString('base64')}` });

async function connect(path: string, headers: Record<string, string>) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}${path}`), { requestInit: { headers } });
  const client = new Client({ name: 'http-test', version: '1.0.0' });
  await client.connect(transport);
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
    keepArtifact('http-response', JSON.stringify(result));
    return result;
  };
  return { client, transport, call };
}

async function rpc(path: string, headers: Record<string, string>, body: object) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  keepArtifact('http-response', text);
  return { status: response.status, headers: response.headers, text };
}

const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const whoamiCall = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } });

test('the SDK client over Streamable HTTP, with Bearer and with Basic; /mcp/admin serves admin tools only', async () => {
  for (const headers of [bearer(alice.token), basic(alice.email, password)]) {
    const session = await connect('/mcp', headers);
    const me = (await session.call('whoami')).structuredContent as { user: { id: string }; session_id: string };
    assert.equal(me.user.id, alice.id);
    assert.match(me.session_id, /^[0-9a-f-]{36}$/);
    assert.equal(session.transport.sessionId, me.session_id, 'the MCP session is the session row');
    assert.deepEqual((await session.client.listTools()).tools.map((t) => t.name).sort(), [...new Set([...ALL_CORE_ADMIN_TOOLS, ...PM_TOOLS])].sort());
    await session.client.close();
  }
  const adminOnly = await connect('/mcp/admin', bearer(alice.token));
  assert.deepEqual((await adminOnly.client.listTools()).tools.map((t) => t.name).sort(), [...ADMIN_TOOLS].sort());
  await adminOnly.client.close();
});

test('wrong password, unknown user, revoked token, disabled user: 401 before anything runs', async () => {
  const carol = await person('carol-http@example.test', ['developer']);
  const dave = await person('dave-http@example.test', ['developer']);
  await rt.runner.run(ops.revokeUserToken, { kind: 'system', name: 'test' }, { user_id: carol.id, token_id: carol.tokenId });
  await rt.runner.run(ops.deactivateUser, { kind: 'system', name: 'test' }, { user_id: dave.id });
  for (const headers of [basic(alice.email, 'not the password'), basic('nobody@example.test', password), bearer(carol.token), basic(dave.email, password), {}]) {
    const answer = await rpc('/mcp', headers, initialize);
    assert.equal(answer.status, 401, JSON.stringify(headers).slice(0, 40));
    assert.match(answer.headers.get('www-authenticate') ?? '', /Basic realm="mandate"/);
  }
});

test("a session id replayed with another user's credentials, or with none, is 401 and nothing runs", async () => {
  const init = await rpc('/mcp', bearer(alice.token), initialize);
  assert.equal(init.status, 200, init.text);
  const sessionId = init.headers.get('mcp-session-id')!;
  assert.ok(sessionId);
  const ok = await rpc('/mcp', { ...bearer(alice.token), 'mcp-session-id': sessionId }, whoamiCall(2));
  assert.equal(ok.status, 200, ok.text);
  const before = (await rt.auditRows()).length;
  const asBob = await rpc('/mcp', { ...bearer(bob.token), 'mcp-session-id': sessionId }, whoamiCall(3));
  assert.equal(asBob.status, 401);
  const anonymous = await rpc('/mcp', { 'mcp-session-id': sessionId }, whoamiCall(4));
  assert.equal(anonymous.status, 401);
  const bobsBasic = await rpc('/mcp', { ...basic(bob.email, password), 'mcp-session-id': sessionId }, whoamiCall(5));
  assert.equal(bobsBasic.status, 401);
  const after = await rt.auditRows();
  assert.equal(after.length, before, 'no operation ran, so nothing was audited');
});

test('each request on a session runs as its own credentials: a narrower token of the same user gets only its scopes', async () => {
  const init = await rpc('/mcp', bearer(alice.token), initialize);
  assert.equal(init.status, 200, init.text);
  const sessionId = init.headers.get('mcp-session-id')!;
  const user = await rt.db.orm.em.fork().findOneOrFail((await import('../lib/db/entities/index.ts')).User, { id: alice.id });
  const narrow = recordSecret((await makeToken(rt, user, { scopes: ['pm:read'] })).raw);
  const listUsers = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'list_users', arguments: {} } });
  const wide = await rpc('/mcp', { ...bearer(alice.token), 'mcp-session-id': sessionId }, listUsers(2));
  assert.equal(wide.status, 200, wide.text);
  assert.ok(!JSON.parse(wide.text).result.isError, 'her unscoped token may list users');
  const scoped = await rpc('/mcp', { ...bearer(narrow), 'mcp-session-id': sessionId }, listUsers(3));
  assert.equal(scoped.status, 200, scoped.text);
  const result = JSON.parse(scoped.text).result;
  assert.equal(result.isError, true, 'the session\'s first credentials do not carry over to a later request');
  assert.match(errorOfToolResult(result).message, /users:read/);
  const again = await rpc('/mcp', { ...bearer(alice.token), 'mcp-session-id': sessionId }, listUsers(4));
  assert.ok(!JSON.parse(again.text).result.isError);
});

test('a login happens once per session: one session row and one session_start, however many calls', async () => {
  const session = await connect('/mcp/core', basic(bob.email, password));
  for (let i = 0; i < 5; i++) assert.ok(!(await session.call('whoami')).isError);
  const sessionId = session.transport.sessionId!;
  const rows = await rt.db.orm.em.fork().execute<{ n: number }>('select count(*)::int as n from mcp_session where id = ?', [sessionId], 'get');
  assert.equal(rows?.n, 1);
  const starts = (await rt.auditRows()).filter((row) => row.operation === 'session_start' && row.session_id === sessionId);
  assert.equal(starts.length, 1);
  await session.client.close();
});

test('revocation, deactivation and ending the session stop a live HTTP session at its next request', async () => {
  const erin = await person('erin-http@example.test', ['developer']);
  const session = await connect('/mcp/core', bearer(erin.token));
  assert.ok(!(await session.call('whoami')).isError);
  await rt.runner.run(ops.revokeUserSessions, { kind: 'system', name: 'test' }, { user_id: erin.id });
  await assert.rejects(session.call('whoami'), /404|not exist|ended/i);
  const fresh = await connect('/mcp/core', bearer(erin.token));
  assert.ok(!(await fresh.call('whoami')).isError);
  await rt.runner.run(ops.revokeUserToken, { kind: 'system', name: 'test' }, { user_id: erin.id, token_id: erin.tokenId });
  await assert.rejects(fresh.call('whoami'), /401|credentials/i);
});

test('DELETE ends the session; the id is then refused', async () => {
  const init = await rpc('/mcp', bearer(bob.token), initialize);
  const sessionId = init.headers.get('mcp-session-id')!;
  const closed = await fetch(`${base}/mcp`, { method: 'DELETE', headers: { ...bearer(bob.token), 'mcp-session-id': sessionId } });
  assert.equal(closed.status, 204);
  assert.equal((await rpc('/mcp', { ...bearer(bob.token), 'mcp-session-id': sessionId }, whoamiCall(2))).status, 404);
  assert.equal((await rpc('/mcp', bearer(bob.token), whoamiCall(3))).status, 400, 'no session and no initialize');
  assert.equal((await fetch(`${base}/mcp/billing`, { headers: bearer(bob.token) })).status, 404);
});

test('deployment options: a service account answers requests without credentials; the X-MCP-Token guard is required when set', async () => {
  const service = await person('service-http@example.test', ['viewer']);
  const guard = recordSecret('a-shared-guard-secret-1234');
  const guarded = createHttpServer(rt, { serviceToken: service.token, guardToken: guard });
  const url = `http://127.0.0.1:${(await listen(guarded, '127.0.0.1', 0)).port}`;
  try {
    const get = (headers: Record<string, string>) => fetch(`${url}/api/me`, { headers }).then(async (r) => ({ status: r.status, body: (await r.json()) as { user?: { id: string }; error?: { message: string } } }));
    const noGuard = await get({});
    assert.equal(noGuard.status, 401);
    assert.match(noGuard.body.error!.message, /X-MCP-Token/);
    assert.equal((await get({ 'x-mcp-token': 'a-shared-guard-secret-1235' })).status, 401, 'a near miss is a miss');
    const asService = await get({ 'x-mcp-token': guard });
    assert.equal(asService.status, 200);
    assert.equal(asService.body.user!.id, service.id, 'no credentials: the service account');
    const asAlice = await get({ 'x-mcp-token': guard, ...bearer(alice.token) });
    assert.equal(asAlice.body.user!.id, alice.id, 'credentials, when sent, always win');
    assert.equal((await get({ 'x-mcp-token': guard, ...basic(alice.email, 'wrong password') })).status, 401, 'bad credentials never fall back to the service account');
  } finally {
    guarded.closeAllConnections();
    await new Promise((resolve) => guarded.close(resolve));
  }
});

test('a bad body from a caller without valid credentials is a 401, not a 400: the body is read while authentication runs, but reported after it', async () => {
  const response = await fetch(`${base}/mcp/core`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer mnd_not_a_real_token_000000' },
    body: '{ this is not json',
  });
  assert.equal(response.status, 401);
  assert.equal(((await response.json()) as { error: { data: { code: string } } }).error.data.code, 'unauthenticated');
  const valid = await fetch(`${base}/mcp/core`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...bearer(bob.token) },
    body: '{ this is not json',
  });
  assert.equal(valid.status, 400);
  assert.deepEqual(((await valid.json()) as { error: { code: number; data: { field?: string } } }).error, { code: -32700, message: 'the request body is not valid JSON', data: { code: 'invalid_input', message: 'the request body is not valid JSON', field: '(body)' } });
});

test('the hot path forks no entity manager beyond the access-change read: a cached whoami on a bound session', async () => {
  const init = await rpc('/mcp/core', bearer(bob.token), initialize);
  const sessionId = init.headers.get('mcp-session-id')!;
  const headers = { ...bearer(bob.token), 'mcp-session-id': sessionId };
  assert.equal((await rpc('/mcp/core', headers, whoamiCall(2))).status, 200, 'warms the caches');
  const em = rt.db.orm.em;
  const fork = em.fork;
  let forks = 0;
  // Production's path: the suite's own checks (a READ ONLY transaction around reads) fork too.
  rt.runner.verify = false;
  em.fork = function (this: typeof em, ...args: Parameters<typeof fork>) {
    forks++;
    return fork.apply(this, args);
  } as typeof fork;
  try {
    const answer = await rpc('/mcp/core', headers, whoamiCall(3));
    assert.equal(answer.status, 200);
    assert.match(answer.text, new RegExp(bob.email.replace('.', '\\.')));
  } finally {
    em.fork = fork;
    rt.runner.verify = process.env.MANDATE_VERIFY_OPERATIONS === '1';
  }
  // PostgreSQL reads the access-change feed on its own connection; embedded, it reads it only after
  // hearing a change commit, and none did since the warming call. The audit writer's insert goes
  // through one fork made once. Each fork costs a unit of work and two process.env writes; this
  // request used to make three.
  assert.ok(rt.db.changeReader || rt.db.localFeed, 'a runtime reads the feed without the ORM, or only after a change');
  assert.equal(forks, 0);
});

/**
 * Slows this process's access-change reads down, so that a request's speculative pass has surely
 * run to its end on the caches before the read that judges it is in (in-process, the read is
 * otherwise as quick as the request and may land mid-pass). The results must not depend on it.
 */
function slowEpochReads(ms: number): () => void {
  const epoch = rt.resolver.changes as unknown as { fetch: (...args: unknown[]) => Promise<unknown> };
  const fetch = epoch.fetch;
  epoch.fetch = async (...args) => {
    const read = await fetch.apply(epoch, args);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return read;
  };
  return () => {
    epoch.fetch = fetch;
  };
}

test('a request served from caches while the access-change read is out is redone when the read finds them stale: a lost role, a revoked token, a disabled user', async (t) => {
  const changes = rt.resolver.changes;
  t.after(slowEpochReads(150));
  const system = { kind: 'system' as const, name: 'test' };
  const gina = await person('gina-http@example.test', ['admin']);
  const init = await rpc('/mcp', bearer(gina.token), initialize);
  const sessionId = init.headers.get('mcp-session-id')!;
  const headers = { ...bearer(gina.token), 'mcp-session-id': sessionId };
  const listUsers = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'list_users', arguments: {} } });
  const createToken = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'create_my_token', arguments: { name: `spec-${id}` } } });
  assert.ok(!JSON.parse((await rpc('/mcp', headers, listUsers(2))).text).result.isError, 'warms her caches');
  assert.ok(!JSON.parse((await rpc('/mcp', headers, listUsers(3))).text).result.isError);
  const allowedSince = async (mark: number, operation: string) =>
    (await rt.auditRows()).slice(mark).filter((row) => row.actor_id === gina.id && row.operation === operation && row.outcome === 'allowed').length;

  // Each change is committed by another path, so this instance's caches still hold her as she was:
  // the request is served from them, and only the read sent after it arrived can tell.
  const served = { ...changes.stats };
  const admin = (await rt.db.orm.em.fork().execute<{ id: string }>(
    `select ra.id from role_assignment ra join role r on r.id = ra.role_id where ra.user_id = ? and r.name = 'admin'`, [gina.id], 'get'))!;
  assert.ok((await rt.runner.run(ops.removeRole, system, { user_id: gina.id, assignment_id: admin.id })).ok);
  let mark = (await rt.auditRows()).length;
  const demoted = await rpc('/mcp', headers, listUsers(4));
  assert.equal(demoted.status, 200, demoted.text);
  assert.match(errorOfToolResult(JSON.parse(demoted.text).result).message, /users:read/, 'the stale answer was dropped, and the redo refused');
  assert.equal(await allowedSince(mark, 'list_users'), 0, 'the dropped answer left no audit event');
  assert.ok(changes.stats.speculations > served.speculations, 'the request was served speculatively');
  assert.equal(changes.stats.speculationsFailed, served.speculationsFailed + 1, 'and redone once');

  const revoked = await person('hank-http@example.test', ['developer']);
  const hankInit = await rpc('/mcp', bearer(revoked.token), initialize);
  const hankHeaders = { ...bearer(revoked.token), 'mcp-session-id': hankInit.headers.get('mcp-session-id')! };
  assert.equal((await rpc('/mcp', hankHeaders, whoamiCall(2))).status, 200);
  const tokensBefore = await rt.db.orm.em.fork().execute<{ n: number }>('select count(*)::int as n from api_token where user_id = ?', [revoked.id], 'get');
  await rt.runner.run(ops.revokeUserToken, system, { user_id: revoked.id, token_id: revoked.tokenId });
  const failedBefore = changes.stats.speculationsFailed;
  mark = (await rt.auditRows()).length;
  // A write is never run on unconfirmed caches, so a revoked token cannot mint another in the gap.
  const mint = await rpc('/mcp', hankHeaders, createToken(3));
  assert.equal(mint.status, 401, mint.text);
  assert.match(mint.headers.get('www-authenticate') ?? '', /Bearer/, 'a real 401, not a JSON-RPC error in a 200');
  assert.equal(changes.stats.speculationsFailed, failedBefore + 1);
  const tokensAfter = await rt.db.orm.em.fork().execute<{ n: number }>('select count(*)::int as n from api_token where user_id = ?', [revoked.id], 'get');
  assert.equal(tokensAfter?.n, tokensBefore?.n);
  assert.equal((await rpc('/mcp', hankHeaders, whoamiCall(4))).status, 401);
  assert.equal((await rt.auditRows()).slice(mark).filter((row) => row.actor_id === revoked.id && row.outcome === 'allowed').length, 0);

  const ivy = await person('ivy-http@example.test', ['admin']);
  const ivyInit = await rpc('/mcp', bearer(ivy.token), initialize);
  const ivyHeaders = { ...bearer(ivy.token), 'mcp-session-id': ivyInit.headers.get('mcp-session-id')! };
  assert.ok(!JSON.parse((await rpc('/mcp', ivyHeaders, listUsers(2))).text).result.isError, 'warms her caches');
  await rt.runner.run(ops.deactivateUser, system, { user_id: ivy.id });
  const failedBeforeDeactivation = changes.stats.speculationsFailed;
  mark = (await rt.auditRows()).length;
  // She was an admin when her caches were filled; a write runs only once the read is in.
  const rename = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'update_user', arguments: { user_id: bob.id, display_name: 'Renamed In The Gap' } } };
  const disabled = await rpc('/mcp', ivyHeaders, rename);
  assert.equal(disabled.status, 401, disabled.text);
  assert.equal(changes.stats.speculationsFailed, failedBeforeDeactivation + 1);
  const bobNow = await rt.db.orm.em.fork().execute<{ display_name: string }>('select display_name from app_user where id = ?', [bob.id], 'get');
  assert.notEqual(bobNow?.display_name, 'Renamed In The Gap');
  const whoami = await rpc('/mcp', ivyHeaders, whoamiCall(6));
  assert.equal(whoami.status, 401, whoami.text);
  assert.ok(!whoami.text.includes(ivy.email), 'nothing of the stale answer');
  assert.equal((await rt.auditRows()).slice(mark).filter((row) => row.actor_id === ivy.id && row.outcome === 'allowed').length, 0);
});

test("other users' access changing does not redo her requests: each is confirmed on the read that reports their changes", async (t) => {
  const changes = rt.resolver.changes;
  t.after(slowEpochReads(100));
  const system = { kind: 'system' as const, name: 'test' };
  const others = await Promise.all(['olga-http@example.test', 'otto-http@example.test'].map((email) => person(email, ['developer'])));
  const init = await rpc('/mcp/core', bearer(bob.token), initialize);
  const headers = { ...bearer(bob.token), 'mcp-session-id': init.headers.get('mcp-session-id')! };
  assert.equal((await rpc('/mcp/core', headers, whoamiCall(2))).status, 200, 'warms his caches');
  const before = { ...changes.stats };
  for (const [index, other] of others.entries()) {
    // Committed by another path after his caches were filled: the read his request waits for reports it.
    const revoked = await rt.runner.run(ops.revokeUserToken, system, { user_id: other.id, token_id: other.tokenId });
    assert.ok(revoked.ok);
    const answer = await rpc('/mcp/core', headers, whoamiCall(3 + index));
    assert.equal(answer.status, 200);
    assert.match(answer.text, /bob-http@example\.test/);
  }
  assert.ok(changes.stats.invalidations >= before.invalidations + 2, 'the reads did report the other users\' changes');
  assert.equal(changes.stats.speculations, before.speculations + 2, 'both requests were served speculatively');
  assert.equal(changes.stats.speculationsFailed, before.speculationsFailed, 'and neither was redone');
  for (const other of others) assert.equal((await rpc('/mcp/core', bearer(other.token), initialize)).status, 401, "their revoked tokens are refused at once");
});

test('while her access stands still, requests on a bound session are served speculatively and confirmed: nothing is redone', async () => {
  const changes = rt.resolver.changes;
  // However slow this machine, the embedded feed's silence is trusted throughout (its bound is tested in change-reader.test.ts).
  const trust = changes.trustLocalFeedMs;
  changes.trustLocalFeedMs = 60_000;
  const init = await rpc('/mcp/core', bearer(bob.token), initialize);
  const headers = { ...bearer(bob.token), 'mcp-session-id': init.headers.get('mcp-session-id')! };
  assert.equal((await rpc('/mcp/core', headers, whoamiCall(2))).status, 200);
  const before = { ...changes.stats };
  for (let id = 3; id < 8; id++) assert.equal((await rpc('/mcp/core', headers, whoamiCall(id))).status, 200);
  changes.trustLocalFeedMs = trust;
  assert.equal(changes.stats.speculations, before.speculations + 5);
  assert.equal(changes.stats.speculationsFailed, before.speculationsFailed);
  // Embedded, the feed is read only after a change committed in this process: none did.
  assert.equal(changes.stats.reads, before.reads + (rt.db.localFeed ? 0 : 5), 'one access-change read per request on PostgreSQL, none embedded');
});
