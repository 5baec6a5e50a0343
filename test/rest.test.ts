import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { inputJsonSchema } from '../lib/ops/json-schema.ts';
import * as ops from '../lib/ops/index.ts';
import { passwordStats } from '../lib/identity/passwords.ts';
import { LoginLimiter } from '../lib/identity/login-limiter.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';

let rt: TestRuntime;
let server: Server;
let base: string;
let adminToken: string;
let devToken: string;
const adminEmail = 'rest-admin@example.test';
const adminPassword = recordSecret('pa:ss:word with colons 1');

before(async () => {
  rt = await testRuntime();
  const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email: adminEmail, password: adminPassword, roles: ['admin'] });
  assert.ok(created.ok);
  const admin = await makeUser(rt, { roles: ['admin'] });
  adminToken = recordSecret((await makeToken(rt, admin)).raw);
  devToken = recordSecret((await makeToken(rt, await makeUser(rt, { roles: ['developer'] }))).raw);
  server = createHttpServer(rt);
  const address = await listen(server, '127.0.0.1', 0);
  base = `http://127.0.0.1:${address.port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const basic = (email: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${email}:${password}`).toString('base64')}` });

async function api(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  // Kept for the secret sweep, except the responses that hand out a new token (once, by design).
  if (!(method === 'POST' && /\/tokens$|\/agent-sessions$/.test(path))) keepArtifact('http-response', text);
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null, text };
}

test('every operation has one REST route, and its path fields are inputs of the operation', () => {
  const seen = new Set<string>();
  for (const op of Object.values(OPERATIONS)) {
    const key = `${op.route.method} ${op.route.path}`;
    assert.ok(!seen.has(key), `${key} is taken twice`);
    seen.add(key);
    assert.match(op.route.path, /^\/api\//);
    const properties = inputJsonSchema(op).properties ?? {};
    for (const [, name] of op.route.path.matchAll(/\{([a-z_]+)\}/g)) assert.ok(name! in properties, `${op.name}: {${name}} is not an input`);
  }
});

test('no or bad credentials: 401 with WWW-Authenticate and a clean JSON error', async () => {
  for (const headers of [{}, bearer(recordSecret(`mnd_${'Z'.repeat(43)}`)), { authorization: 'Digest abc' }, basic(adminEmail, 'wrong-password')]) {
    const answer = await api('GET', '/api/me', headers);
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error.code, 'unauthenticated');
    assert.match(answer.headers.get('www-authenticate') ?? '', /Bearer realm="mandate", Basic realm="mandate"/);
  }
});

test('Bearer and Basic (a password containing ":") both work; Basic pays argon2 once, and a password reset is seen at once', async () => {
  const viaToken = await api('GET', '/api/me', bearer(adminToken));
  assert.equal(viaToken.status, 200);
  const before = passwordStats.verifications;
  const first = await api('GET', '/api/me', basic(adminEmail, adminPassword));
  assert.equal(first.status, 200, first.text);
  assert.equal(first.body.user.email, adminEmail);
  for (let i = 0; i < 5; i++) assert.equal((await api('GET', '/api/me', basic(adminEmail, adminPassword))).status, 200);
  assert.equal(passwordStats.verifications - before, 1, 'one verify for six requests');
  const newPassword = recordSecret('a brand new password 2');
  const reset = await api('POST', `/api/admin/users/${first.body.user.id}/password`, bearer(adminToken), { password: newPassword });
  assert.equal(reset.status, 200, reset.text);
  assert.ok(!reset.text.includes(newPassword));
  assert.equal((await api('GET', '/api/me', basic(adminEmail, adminPassword))).status, 401, 'the old password stops at once');
  assert.equal((await api('GET', '/api/me', basic(adminEmail, newPassword))).status, 200);
});

test('statuses: 400 with the field, 403 naming the permission, 404, 409, 405 and unknown routes', async () => {
  const invalid = await api('POST', '/api/admin/users', bearer(adminToken), { email: 'not-an-email' });
  assert.deepEqual([invalid.status, invalid.body.error.field], [400, 'email']);
  const created = await api('POST', '/api/admin/users', bearer(adminToken), { email: 'rest-user@example.test' });
  assert.equal(created.status, 200, created.text);
  const duplicate = await api('POST', '/api/admin/users', bearer(adminToken), { email: 'rest-user@example.test' });
  assert.deepEqual([duplicate.status, duplicate.body.error.field], [409, 'email']);
  const denied = await api('GET', '/api/admin/users', bearer(devToken));
  assert.equal(denied.status, 403);
  assert.match(denied.body.error.message, /list_users needs users:read/);
  assert.equal((await api('GET', '/api/admin/users/00000000-0000-4000-8000-000000000000', bearer(adminToken))).status, 404);
  assert.deepEqual((await api('GET', '/api/admin/users/nope', bearer(adminToken))).body.error.field, 'user_id');
  const wrongMethod = await api('PUT', '/api/admin/users', bearer(adminToken));
  assert.equal(wrongMethod.status, 405);
  assert.match(wrongMethod.headers.get('allow') ?? '', /GET/);
  assert.equal((await api('GET', '/api/nothing-here', bearer(adminToken))).status, 404);
});

test('query strings are typed by the schema; bodies must be JSON objects; the path wins over nothing else', async () => {
  const page = await api('GET', '/api/admin/users?limit=2&active=true', bearer(adminToken));
  assert.equal(page.status, 200, page.text);
  assert.equal(page.body.items.length, 2);
  assert.ok(page.body.next_cursor);
  const next = await api('GET', `/api/admin/users?limit=2&cursor=${encodeURIComponent(page.body.next_cursor)}`, bearer(adminToken));
  assert.notEqual(next.body.items[0].id, page.body.items[0].id);
  assert.equal((await api('GET', '/api/admin/users?limit=lots', bearer(adminToken))).body.error.field, 'limit');
  assert.equal((await api('POST', '/api/admin/users', bearer(adminToken), '[1,2]')).body.error.field, '(body)');
  assert.equal((await api('POST', '/api/admin/users', bearer(adminToken), '{not json')).status, 400);
  const huge = await api('POST', '/api/admin/users', bearer(adminToken), JSON.stringify({ email: 'x'.repeat(2 * 1024 * 1024) }));
  assert.deepEqual([huge.status, huge.body.error.field], [413, '(body)']);
  assert.match(huge.body.error.message, /larger than/);
  const user = (await api('POST', '/api/admin/users', bearer(adminToken), { email: 'path-user@example.test' })).body;
  const conflict = await api('POST', `/api/admin/users/${user.id}/roles`, bearer(adminToken), { user_id: '00000000-0000-4000-8000-000000000000', role: 'viewer' });
  assert.deepEqual([conflict.status, conflict.body.error.field], [400, 'user_id']);
  const assigned = await api('POST', `/api/admin/users/${user.id}/roles`, bearer(adminToken), { role: 'viewer' });
  assert.equal(assigned.status, 200, assigned.text);
  const removed = await api('DELETE', `/api/admin/users/${user.id}/roles/${assigned.body.id}`, bearer(adminToken));
  assert.equal(removed.status, 200, removed.text);
  const deleted = await api('DELETE', `/api/admin/users/${user.id}?cascade=true`, bearer(adminToken));
  assert.deepEqual([deleted.status, deleted.body.deleted], [200, true]);
});

test('a token created over REST is in that response once and works at once', async () => {
  const mine = await api('POST', '/api/me/tokens', bearer(adminToken), { name: 'second client', expires_in_days: 1 });
  assert.equal(mine.status, 200, mine.text);
  const token = recordSecret(mine.body.token);
  assert.equal((await api('GET', '/api/me/tokens', bearer(token))).body.items.some((t: { id: string; token?: string }) => t.id === mine.body.id && !t.token), true);
  assert.equal((await api('DELETE', `/api/me/tokens/${mine.body.id}`, bearer(token))).status, 200);
  assert.equal((await api('GET', '/api/me', bearer(token))).status, 401, 'a revoked token is refused on the next request');
});

test('failed-login limiter over HTTP: bad passwords lead to 429 with Retry-After, unverified, even with the right password', async () => {
  const email = 'brute-target@example.test';
  const password = recordSecret('the right password 3');
  assert.ok((await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email, password })).ok);
  assert.equal((await api('GET', '/api/me', { authorization: 'Basic %%%' })).status, 401, 'a malformed header is not a credential failure');
  // Earlier tests in this file failed from this IP too, and the per-IP count is shared: the block
  // comes at the latest with the fifth failure here.
  const statuses: number[] = [];
  for (let i = 0; i < 6 && statuses.at(-1) !== 429; i++) statuses.push((await api('GET', '/api/me', basic(email, recordSecret(`wrong guess ${i}`)))).status);
  assert.equal(statuses.at(-1), 429, `statuses ${statuses.join(',')}`);
  assert.ok(statuses.length <= 6);
  const before = passwordStats.verifications;
  const blocked = await api('GET', '/api/me', basic(email, password));
  assert.equal(blocked.status, 429);
  assert.equal(blocked.body.error.code, 'rate_limited');
  const retryAfter = Number(blocked.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  assert.equal(passwordStats.verifications, before, 'a blocked attempt is not even verified');
  assert.equal((await api('GET', '/api/me', bearer(adminToken))).status, 200, 'API tokens are not affected');
  const rows = await rt.db.orm.em.fork().execute<{ key: string }[]>('select key from login_limit');
  assert.ok(rows.length >= 3 && rows.every((row) => !row.key.includes(email)), 'emails are stored hashed');
});

test('the limiter counts per IP, per IP + email and per email: another IP cannot keep guessing one account', async () => {
  const limiter = new LoginLimiter(rt.db.orm);
  // Five failed attempts: each takes its point and keeps it.
  for (let i = 0; i < 5; i++) await limiter.take('10.0.0.1', 'victim@example.test');
  const refused = async (ip: string, email: string) => limiter.take(ip, email).then(() => false, (e: { code: string }) => e.code === 'rate_limited');
  assert.equal(await refused('10.0.0.2', 'victim@example.test'), true, 'per email, from any IP');
  assert.equal(await refused('10.0.0.1', 'someone-else@example.test'), true, 'per IP, for any email');
  assert.equal(await refused('10.0.0.2', 'someone-else@example.test'), false, 'others are not affected');
});
