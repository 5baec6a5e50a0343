import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import type { Caller } from '../lib/identity/caller.ts';
import { authenticateToken } from '../lib/identity/authenticate.ts';
import { endExpiredAgentSessions } from '../lib/identity/account-lifecycle.ts';
import { callerOf, delegate, makeProject, makeRole, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, TEST_DB, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mandate } from './helpers/cli.ts';
import { processDatabase } from './helpers/stdio.ts';

let rt: TestRuntime;
let clock = new Date();
before(async () => {
  rt = await testRuntime({ now: () => clock });
});
after(() => rt.close());

async function run<T = any>(op: AnyOperation, caller: Caller, input: unknown): Promise<T> {
  const result = await rt.runner.run(op, caller, input);
  if (!result.ok) throw result.error;
  return result.value as T;
}

async function held(token: string) {
  const caller = await authenticateToken(rt.db.orm.em.fork(), token, clock);
  const effective = await rt.resolver.resolve(rt.db.orm.em.fork(), caller);
  return effective.live ? [...effective.grants.keys()].sort() : 'dead';
}

test("the agent gets the role's permissions that the spawner holds; the rest is reported as skipped", async () => {
  await makeRole(rt, 'ops-agent', ['pm:read', 'pm:write', 'users:read', 'audit:read']);
  const spawner = await makeUser(rt, { roles: ['developer'] });
  const giver = await makeUser(rt, { roles: ['admin'] });
  await delegate(rt, giver, spawner, 'users:read');
  const started = await run(ops.startAgentSession, callerOf(spawner), { role: 'ops-agent' });
  recordSecret(started.token);
  assert.equal(started.role, 'ops-agent');
  assert.match(started.token, /^mnd_/);
  assert.deepEqual(started.granted.map((g: { permission: string }) => g.permission), ['pm:read', 'pm:write']);
  assert.deepEqual(
    started.skipped.map((s: { permission: string; reason: string }) => [s.permission, /delegation/.test(s.reason) ? 'delegated' : 'not held']),
    [['audit:read', 'not held'], ['users:read', 'delegated']],
  );
  assert.deepEqual(await held(started.token), ['pm:read', 'pm:write']);
  assert.equal(started.agent.type, 'agent');
  const expires = new Date(started.agent_session.expires_at).getTime() - clock.getTime();
  assert.equal(expires, 120 * 60_000, 'default lifetime is 2 h');
});

test('delegate_admin adds only the admin permissions the spawner holds; project-only grants stay per project', async () => {
  await makeProject(rt, 'AGP');
  await makeRole(rt, 'user-admin', ['users:read', 'users:write']);
  const spawner = await makeUser(rt, { roles: ['user-admin', ['developer', 'AGP']] });
  const started = await run(ops.startAgentSession, callerOf(spawner), { role: 'agent', delegate_admin: true, lifetime_minutes: 30 });
  recordSecret(started.token);
  const granted = started.granted.map((g: { permission: string; project_key: string | null }) => `${g.permission}@${g.project_key ?? '*'}`);
  assert.deepEqual(granted, ['installs:use@AGP', 'installs:write@AGP', 'pm:read@AGP', 'pm:write@AGP', 'users:read@*', 'users:write@*']);
  assert.ok(started.skipped.some((s: { permission: string }) => s.permission === 'audit:read'));
  assert.deepEqual(await held(started.token), ['users:read', 'users:write']);
});

test('lifetime is bounded: at most 24 h', async () => {
  const spawner = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const tooLong = await rt.runner.run(ops.startAgentSession, spawner, { role: 'agent', lifetime_minutes: 24 * 60 + 1 });
  assert.equal(!tooLong.ok && tooLong.error.field, 'lifetime_minutes');
  const unknownRole = await rt.runner.run(ops.startAgentSession, spawner, { role: 'wizard' });
  assert.equal(!unknownRole.ok && unknownRole.error.code, 'not_found');
});

test('ending the session revokes token and delegations, ends sessions and deactivates the agent; strangers cannot end it', async () => {
  const spawner = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const started = await run(ops.startAgentSession, spawner, { role: 'agent' });
  recordSecret(started.token);
  const stranger = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const refused = await rt.runner.run(ops.endAgentSessionOp, stranger, { agent_session_id: started.agent_session.id });
  assert.equal(!refused.ok && refused.error.code, 'forbidden');
  const listed = await run(ops.listMyAgentSessions, spawner, {});
  assert.deepEqual(listed.items.map((s: { id: string }) => s.id), [started.agent_session.id]);
  const ended = await run(ops.endAgentSessionOp, spawner, { agent_session_id: started.agent_session.id });
  assert.equal(ended.ended_now, true);
  await assert.rejects(authenticateToken(rt.db.orm.em.fork(), started.token, clock));
  const delegations = await rt.db.orm.em.fork().execute<{ n: number }>('select count(*)::int as n from delegation where delegate_id = ? and revoked_at is null', [started.agent.id], 'get');
  assert.equal(delegations?.n, 0);
  const agentRow = await rt.db.orm.em.fork().execute<{ active: boolean }>('select active from app_user where id = ?', [started.agent.id], 'get');
  assert.equal(agentRow?.active, false);
  assert.equal((await run(ops.listMyAgentSessions, spawner, {})).items.length, 0);
});

test('expiry: the token stops at once, and the sweep deactivates the agent and revokes its delegations', async () => {
  const spawner = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const started = await run(ops.startAgentSession, spawner, { role: 'agent', lifetime_minutes: 5 });
  recordSecret(started.token);
  assert.deepEqual(await held(started.token), ['installs:use', 'pm:read', 'pm:write']);
  clock = new Date(clock.getTime() + 6 * 60_000);
  await assert.rejects(authenticateToken(rt.db.orm.em.fork(), started.token, clock), 'expired token is refused before any sweep');
  assert.ok((await endExpiredAgentSessions(rt.db.orm.em.fork(), clock)) >= 1);
  const agent = await run(ops.getUser, callerOf(await makeUser(rt, { roles: ['admin'] })), { user_id: started.agent.id });
  assert.equal(agent.active, false);
  assert.equal(agent.delegations.received.length, 0);
});

test('the sweep skips a session another instance is ending instead of waiting on it (no pile-up, no deadlock between concurrent starts)', { skip: TEST_DB !== 'postgres' && 'needs a second connection (PostgreSQL)' }, async () => {
  const spawner = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const [held, free] = [await run(ops.startAgentSession, spawner, { role: 'agent', lifetime_minutes: 5 }), await run(ops.startAgentSession, spawner, { role: 'agent', lifetime_minutes: 5 })];
  clock = new Date(clock.getTime() + 6 * 60_000);
  const { default: pg } = await import('pg');
  const other = new pg.Client({ connectionString: rt.db.orm.config.get('clientUrl') as string });
  await other.connect();
  const endedAt = async (id: string) => (await rt.db.orm.em.fork().execute<{ ended_at: Date | null }>('select ended_at from agent_session where id = ?', [id], 'get'))?.ended_at ?? null;
  try {
    await other.query('begin');
    await other.query('select id from agent_session where id = $1 for update', [held.agent_session.id]);
    const sweep = endExpiredAgentSessions(rt.db.orm.em.fork(), clock);
    const waited = await Promise.race([sweep.then(() => false), new Promise((resolve) => setTimeout(resolve, 3000, true))]);
    assert.equal(waited, false, 'the sweep finished while the other transaction held its session');
    assert.ok(await endedAt(free.agent_session.id), 'the session nobody held is ended');
    assert.equal(await endedAt(held.agent_session.id), null, 'the held one is left to its holder');
    await other.query('rollback');
    await endExpiredAgentSessions(rt.db.orm.em.fork(), clock);
    assert.ok(await endedAt(held.agent_session.id), 'and ended by the next sweep once free');
  } finally {
    await other.end();
  }
});

test('ending a session while a sweep holds it waits for the sweep instead of deadlocking with it (one lock order: the agent session first)', { skip: TEST_DB !== 'postgres' && 'needs a second connection (PostgreSQL)' }, async () => {
  const spawner = callerOf(await makeUser(rt, { roles: ['developer'] }));
  const started = await run(ops.startAgentSession, spawner, { role: 'agent', lifetime_minutes: 5 });
  const { default: pg } = await import('pg');
  const sweep = new pg.Client({ connectionString: rt.db.orm.config.get('clientUrl') as string });
  await sweep.connect();
  try {
    // What a sweep on another instance does: the session first, then what it was given.
    await sweep.query('begin');
    await sweep.query('select id from agent_session where id = $1 for update', [started.agent_session.id]);
    const ending = rt.runner.run(ops.endAgentSessionOp, spawner, { agent_session_id: started.agent_session.id });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await sweep.query('update delegation set revoked_at = now() where delegate_id = $1 and revoked_at is null', [started.agent.id]);
    await sweep.query('commit');
    const ended = await ending;
    assert.ok(ended.ok, `end_agent_session: ${!ended.ok && ended.error.message}`);
  } finally {
    await sweep.end();
  }
});

test('CLI: mandate agent start --format env prints what a runner needs; agent end ends it', async () => {
  const db = await processDatabase();
  try {
    const token = await db.use(async (runtime) => {
      const user = await makeUser(runtime, { roles: ['developer'] });
      return recordSecret((await makeToken(runtime, user)).raw);
    });
    const started = await mandate(['agent', 'start', '--role', 'agent', '--format', 'env'], { ...db.env, MANDATE_TOKEN: token });
    assert.equal(started.code, 0, started.stderr);
    const env = Object.fromEntries(started.stdout.trim().split('\n').map((line) => line.split(/=(.*)/s).slice(0, 2)));
    assert.equal(env.AGENT_ROLE, 'agent');
    assert.match(env.MANDATE_TOKEN, /^mnd_/);
    recordSecret(env.MANDATE_TOKEN);
    const ended = await mandate(['agent', 'end', env.MANDATE_AGENT_SESSION], { ...db.env, MANDATE_TOKEN: token });
    assert.equal(ended.code, 0, ended.stderr);
    assert.match(ended.stdout, /ended/);
    // The connections to lend are named like the tool's: one the user does not have is refused on its field.
    const unknown = await mandate(['agent', 'start', '--role', 'agent', '--pm-connection', 'nope'], { ...db.env, MANDATE_TOKEN: token });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /you have no PM connection "nope"/);
    const none = await mandate(['agent', 'start', '--role', 'agent', '--no-pm-connections'], { ...db.env, MANDATE_TOKEN: token });
    assert.equal(none.code, 0, none.stderr);
    const lentNothing = JSON.parse(none.stdout);
    recordSecret(lentNothing.token);
    assert.deepEqual(lentNothing.pm_connections, []);
    const both = await mandate(['agent', 'start', '--role', 'agent', '--no-pm-connections', '--pm-connection', 'x'], { ...db.env, MANDATE_TOKEN: token });
    assert.equal(both.code, 2);
    const noToken = await mandate(['agent', 'start', '--role', 'agent'], db.env);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /MANDATE_TOKEN is not set/);
  } finally {
    db.dispose();
  }
});
