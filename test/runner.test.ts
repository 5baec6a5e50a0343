import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { callerOf, makeProject, makeToken, makeUser, update } from './helpers/fixtures.ts';
import { operation } from '../lib/ops/operation.ts';
import { assignRole, createTokenForUser, createUser, listUsers, whoami } from '../lib/ops/index.ts';
import { User } from '../lib/db/entities/index.ts';
import { passwordSchema } from '../lib/identity/passwords.ts';

let rt: TestRuntime;
before(async () => {
  rt = await testRuntime();
  await makeProject(rt, 'ALPHA');
});
after(() => rt.close());

async function auditFor(requestId: string) {
  await rt.runner.audit.flush();
  return (await rt.db.orm.em.fork().execute('select * from audit_event where request_id = ?', [requestId])) as Record<string, any>[];
}

// An operation that writes, then fails in a way nobody planned for.
const writeThenCrash = operation({
  name: 'test_write_then_crash',
  servers: [],
  route: { method: 'POST', path: '/api/test/test_write_then_crash' },
  title: 'test',
  description: 'test',
  input: z.strictObject({ email: z.string(), password: passwordSchema }),
  output: z.strictObject({}),
  permission: 'users:write',
  effect: 'write',
  annotations: {},
  async run(ctx, input) {
    ctx.em.create(User, { name: 'crash', email: input.email, displayName: 'x', type: 'human', active: true });
    await ctx.em.flush();
    throw new Error(`database exploded near ${input.password} at /secret/path.ts:12`);
  },
});

describe('one audit event per outcome', () => {
  test('allowed: the result, and one event naming actor, operation, target', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const password = recordSecret('s3cret-allowed-Password!');
    const result = await rt.runner.run(createUser, callerOf(admin), { email: 'New.Person@Example.test', password }, { requestId: 'req-allowed', sessionId: 'sess-1', clientAddress: '127.0.0.9' });
    assert.equal(result.ok, true);
    assert.equal(result.ok && (result.value as { email: string }).email, 'new.person@example.test');
    const events = await auditFor('req-allowed');
    assert.equal(events.length, 1);
    const [e] = events;
    assert.equal(e!.outcome, 'allowed');
    assert.equal(e!.actor_id, admin.id);
    assert.equal(e!.operation, 'create_user');
    assert.equal(e!.permission, 'users:write');
    assert.equal(e!.session_id, 'sess-1');
    assert.equal(e!.client_address, '127.0.0.9');
    assert.match(e!.target, /^user:[0-9a-f-]{36}$/);
    assert.equal(e!.detail.input.password, '[redacted]');
    assert.ok(!JSON.stringify(e).includes(password));
  });

  test('denied: the error names the missing permission; one event; nothing written', async () => {
    const dev = await makeUser(rt, { roles: ['developer'] });
    const result = await rt.runner.run(createUser, callerOf(dev), { email: 'denied@example.test' }, { requestId: 'req-denied' });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.error.code, 'forbidden');
    assert.match(!result.ok ? result.error.message : '', /create_user needs users:write/);
    const events = await auditFor('req-denied');
    assert.deepEqual(events.map((e) => [e.outcome, e.error_code]), [['denied', 'forbidden']]);
    assert.equal(await rt.db.orm.em.fork().count(User, { email: 'denied@example.test' }), 0);
  });

  test('denied for a project names the project', async () => {
    const dev = await makeUser(rt, { roles: ['developer'] });
    const target = await makeUser(rt);
    const result = await rt.runner.run(assignRole, callerOf(dev), { user_id: target.id, role: 'viewer', project_key: 'alpha' });
    assert.match(!result.ok ? result.error.message : '', /needs roles:write in project ALPHA/);
  });

  test('invalid: field-level errors for every bad field, one event, secrets redacted', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const shortPassword = recordSecret('short!1');
    const result = await rt.runner.run(createUser, callerOf(admin), { email: 'not-an-email', password: shortPassword, type: 'robot', extra: 1 }, { requestId: 'req-invalid' });
    assert.equal(result.ok, false);
    const error = !result.ok ? result.error : undefined;
    assert.equal(error?.code, 'invalid_input');
    assert.equal(error?.status, 400);
    const fields = error?.issues?.map((i) => i.field).sort();
    assert.deepEqual(fields, ['email', 'extra', 'password', 'type']);
    assert.match(error!.message, /email: must be an email address/);
    assert.match(error!.message, /password: must be at least 8 characters/);
    assert.ok(!error!.message.includes(shortPassword));
    const events = await auditFor('req-invalid');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, 'invalid');
    assert.equal(events[0]!.detail.input.password, '[redacted]');
    assert.ok(!JSON.stringify(events).includes(shortPassword));
  });

  test('invalid: a value zod itself throws on (an object whose length cannot be compared) is an invalid_input on its field, audited, nothing written', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    // What JSON.parse gives for {"display_name": {"length": {"toString": 0}}}: zod 4 compares that length
    // with the minimum and throws a TypeError of its own.
    const hostile = { length: { toString: 0 } };
    assert.throws(() => z.string().min(1).safeParse(hostile), TypeError, 'zod still throws here; if not, this test has lost its point');
    const email = 'hostile-length@example.test';
    const result = await rt.runner.run(createUser, callerOf(admin), { email, display_name: hostile, password: 'long enough password 1' }, { requestId: 'req-hostile' });
    assert.equal(result.ok, false);
    const error = !result.ok ? result.error : undefined;
    assert.equal(error?.code, 'invalid_input');
    assert.equal(error?.field, 'display_name');
    assert.deepEqual(error?.issues?.map((i) => i.field), ['display_name']);
    assert.match(error!.message, /^invalid input: display_name: /);
    const events = await auditFor('req-hostile');
    assert.equal(events.length, 1);
    assert.equal(events[0]!.outcome, 'invalid');
    assert.equal(await rt.db.orm.em.fork().count(User, { email }), 0);
  });

  test('failed (unexpected): a bare internal error, no partial write, one event, no secret or stack anywhere', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const password = recordSecret('crash-test-password-123');
    const result = await rt.runner.run(writeThenCrash, callerOf(admin), { email: 'crash@example.test', password }, { requestId: 'req-failed' });
    assert.equal(result.ok, false);
    const error = !result.ok ? result.error : undefined;
    assert.equal(error?.code, 'internal');
    assert.equal(error?.message, 'internal error; the server log has the details');
    assert.equal(await rt.db.orm.em.fork().count(User, { email: 'crash@example.test' }), 0, 'the write was rolled back');
    const events = await auditFor('req-failed');
    assert.deepEqual(events.map((e) => [e.outcome, e.error_code]), [['failed', 'internal']]);
    assert.ok(!JSON.stringify(events).includes('/secret/path.ts'));
    // The server log has the details, minus the secret the thrown message quoted.
    const logged = rt.logs.find((line) => line.includes('operation failed unexpectedly') && line.includes('req-failed'));
    assert.ok(logged, 'the unexpected error is logged');
    assert.ok(logged.includes('database exploded near [redacted]'), 'with the secret input value scrubbed from its message');
    assert.ok(!rt.logs.join('').includes(password));
  });

  test('failed (domain): a conflict is a clean 409 with the field', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    await rt.runner.run(createUser, callerOf(admin), { email: 'dupe@example.test' });
    const again = await rt.runner.run(createUser, callerOf(admin), { email: 'DUPE@example.test', name: 'other-name' }, { requestId: 'req-conflict' });
    assert.equal(!again.ok && again.error.status, 409);
    assert.equal(!again.ok && again.error.field, 'email');
    assert.equal(!again.ok && again.error.message, 'a user with this email already exists');
    assert.deepEqual((await auditFor('req-conflict')).map((e) => e.outcome), ['failed']);
  });

  test('a deactivated caller is refused as unauthenticated, and that is audited as denied', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    await update(rt, 'update app_user set active = false where id = ?', [admin.id]);
    const result = await rt.runner.run(createUser, callerOf(admin), { email: 'ghost@example.test' }, { requestId: 'req-dead' });
    assert.equal(!result.ok && result.error.code, 'unauthenticated');
    assert.deepEqual((await auditFor('req-dead')).map((e) => e.outcome), ['denied']);
  });
});

describe('delegated calls record the chain', () => {
  test('a call made through a delegation names the delegator in on_behalf_of', async () => {
    const boss = await makeUser(rt, { roles: ['admin'] });
    const helper = await makeUser(rt);
    const { createDelegation } = await import('../lib/ops/index.ts');
    const d = await rt.runner.run(createDelegation, callerOf(boss), { delegate_id: helper.id, permission: 'users:write', reason: 'onboarding week' });
    assert.equal(d.ok, true);
    const result = await rt.runner.run(createUser, callerOf(helper), { email: 'via-delegation@example.test' }, { requestId: 'req-chain' });
    assert.equal(result.ok, true);
    const [event] = await auditFor('req-chain');
    assert.deepEqual(event!.on_behalf_of, [{ userId: boss.id, via: 'delegation', delegationId: (d.ok && (d.value as { id: string }).id) }]);
  });
});

describe('tokens through the runner', () => {
  test('the raw token is in the result once, never in the audit event or the logs; only its hash is stored', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const agent = await makeUser(rt, { type: 'agent', roles: ['agent'] });
    const result = await rt.runner.run(createTokenForUser, callerOf(admin), { user_id: agent.id, name: 'ci', expires_in_days: 7, scopes: ['pm:read'] }, { requestId: 'req-token' });
    assert.equal(result.ok, true);
    const raw = recordSecret((result.ok && (result.value as { token: string }).token) || '');
    assert.match(raw, /^mnd_[A-Za-z0-9_-]{43}$/);
    const rows = (await rt.db.orm.em.fork().execute('select * from api_token where user_id = ?', [agent.id])) as Record<string, unknown>[];
    assert.equal(rows.length, 1);
    assert.ok(!JSON.stringify(rows).includes(raw), 'the raw token is not stored');
    assert.equal(rows[0]!.hash, (await import('../lib/identity/tokens.ts')).hashApiToken(raw));
    assert.ok(!JSON.stringify(await auditFor('req-token')).includes(raw));
    assert.ok(!rt.logs.join('').includes(raw));
  });

  test('scopes beyond what the user holds are refused, naming them', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const agent = await makeUser(rt, { type: 'agent', roles: ['agent'] });
    const result = await rt.runner.run(createTokenForUser, callerOf(admin), { user_id: agent.id, name: 'ci', scopes: ['pm:read', 'users:write'] });
    assert.equal(!result.ok && result.error.field, 'scopes');
    assert.match(!result.ok ? result.error.message : '', /does not hold users:write/);
  });

  test('a token scoped to pm:read cannot create users even for an admin', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const { token, raw } = await makeToken(rt, admin, { scopes: ['pm:read'] });
    recordSecret(raw);
    const result = await rt.runner.run(createUser, callerOf(admin, token.id), { email: 'scoped@example.test' });
    assert.equal(!result.ok && result.error.code, 'forbidden');
    assert.match(!result.ok ? result.error.message : '', /not in this API token's scopes/);
  });

  test('assigning a role richer than your own is refused (no escalation through roles:write)', async () => {
    const { makeRole } = await import('./helpers/fixtures.ts');
    await makeRole(rt, 'role-manager', ['roles:write', 'roles:read']);
    const manager = await makeUser(rt, { roles: ['role-manager'] });
    const colleague = await makeUser(rt);
    const result = await rt.runner.run(assignRole, callerOf(manager), { user_id: colleague.id, role: 'admin' });
    assert.equal(!result.ok && result.error.code, 'forbidden');
    assert.match(!result.ok ? result.error.message : '', /assigning role "admin" needs .*users:write/);
  });
});

describe('the group-committed audit writer', () => {
  const stored = async (requestIds: string[]) =>
    Number(((await rt.db.orm.em.fork().execute(`select count(*)::int as n from audit_event where request_id in (${requestIds.map(() => '?').join(', ')})`, requestIds)) as { n: number }[])[0]!.n);

  test('a call that changed nothing answers only once its event is stored: nothing is left for a SIGKILL to lose', async () => {
    const user = await makeUser(rt, { roles: ['admin'] });
    await rt.runner.audit.flush();
    for (const [op, input] of [[whoami, {}], [listUsers, { limit: 1 }], [whoami, { unexpected: true }]] as const) {
      const requestId = `req-stored-${op.name}-${Object.keys(input).join()}`;
      await rt.runner.run(op as typeof whoami, callerOf(user), input, { requestId });
      // No flush: read straight away, through another connection, as a process that outlived this one would.
      assert.equal(await stored([requestId]), 1, `${requestId}: stored when the call answered`);
    }
  });

  test('concurrent calls share inserts: far fewer inserts than calls, every event stored by the time each answers', async () => {
    const user = await makeUser(rt, { roles: ['admin'] });
    await rt.runner.run(whoami, callerOf(user), {});
    const insertsBefore = rt.runner.audit.stats.inserts;
    const ids = Array.from({ length: 200 }, (_, i) => `req-group-${i}`);
    const answeredWith = await Promise.all(
      ids.map(async (requestId) => {
        await rt.runner.run(whoami, callerOf(user), {}, { requestId });
        return stored([requestId]);
      }),
    );
    assert.deepEqual(new Set(answeredWith), new Set([1]), 'each event was stored when its call answered');
    assert.equal(await stored(ids), ids.length);
    const inserts = rt.runner.audit.stats.inserts - insertsBefore;
    assert.ok(inserts >= 1 && inserts <= 20, `200 calls, ${inserts} inserts`);
  });


  test('writes every field as given, awkward text included: quotes, backslashes, braces, commas, NULL-looking strings, unicode', async () => {
    const awkward = `a "quoted", {braced} \\back\\slashed\\ NULL 'single' — ünïcødé 🎉\nnew line`;
    const delegation = { kind: 'delegation' as const, delegationId: '0191d5a4-0000-7000-8000-000000000001', delegatorId: '0191d5a4-0000-7000-8000-000000000002', projectId: null, expiresAt: null };
    const at = new Date('2026-01-02T03:04:05.678Z');
    rt.runner.audit.enqueue({ caller: { kind: 'system', name: awkward }, operation: 'test_awkward', outcome: 'failed', errorCode: 'internal', message: awkward, detail: { input: { text: awkward, list: [1, null, '}{'] } }, target: awkward, requestId: 'req-awkward', sessionId: 'NULL', clientAddress: '::1', via: delegation });
    rt.runner.audit.enqueue({ caller: { kind: 'user', userId: '0191d5a4-0000-7000-8000-000000000003', name: 'n', email: 'e@example.test', type: 'human' }, operation: 'test_plain', outcome: 'allowed', detail: {}, requestId: 'req-awkward-2', at });
    const [first] = await auditFor('req-awkward');
    assert.equal(first!.actor_name, `system:${awkward}`);
    assert.equal(first!.actor_id, null);
    assert.equal(first!.message, awkward);
    assert.equal(first!.target, awkward);
    assert.deepEqual(first!.detail, { input: { text: awkward, list: [1, null, '}{'] } });
    assert.deepEqual(first!.on_behalf_of, [{ userId: delegation.delegatorId, via: 'delegation', delegationId: delegation.delegationId }]);
    assert.equal(first!.session_id, 'NULL', 'the string NULL, not a null');
    assert.equal(first!.client_address, '::1');
    assert.equal(first!.error_code, 'internal');
    const [second] = await auditFor('req-awkward-2');
    assert.equal(second!.actor_id, '0191d5a4-0000-7000-8000-000000000003');
    assert.equal(second!.message, null);
    assert.equal(second!.session_id, null);
    assert.deepEqual(second!.on_behalf_of, []);
    assert.ok(Math.abs(new Date(second!.at).getTime() - Date.now()) < 60_000, 'stamped when enqueued, not when given');
  });
});
