import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { AgentSession, User as UserEntity } from '../lib/db/entities/index.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { authenticateToken } from '../lib/identity/authenticate.ts';
import type { UserCaller } from '../lib/identity/caller.ts';
import { callerOf, delegate, makeUser } from './helpers/fixtures.ts';
import { toolCaller, type Outcome } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { specsMissing } from './helpers/openapi.ts';

// An agent acts in the trackers through the connections its spawner lent its session: the fake
// Jira sees the spawner's credential, the agent never does, and the loan ends with the session.

const missing = specsMissing();

describe('agents use their spawner\'s tracker connections', { skip: missing ?? false }, () => {
  const aliceJira: FakeUser = { accountId: '5b10a2844c20165700ede3aa', name: 'alice', displayName: 'Alice Doe', emailAddress: 'alice@corp.test', secret: recordSecret(`agent-alice-${Math.random().toString(36).slice(2)}`), projects: ['ALPHA'] };
  const bobJira: FakeUser = { accountId: '5b10ac8d82e05b22cc7d4eaa', name: 'bob', displayName: 'Bob Roe', emailAddress: 'bob@corp.test', secret: recordSecret(`agent-bob-${Math.random().toString(36).slice(2)}`), projects: ['BETA'] };
  let fake: FakeJira;
  let rt: TestRuntime;
  let alice: User;
  let bob: User;
  let aliceConnection: string;
  const responses: string[] = [];
  const { ok, refused } = toolCaller(() => rt, responses);

  /** Runs a tool as an agent the way the HTTP and stdio faces do: from its token, at every call. */
  async function asAgent(token: string, name: string, input: Record<string, unknown> = {}): Promise<Outcome> {
    let caller: UserCaller;
    try {
      caller = await authenticateToken(rt.db.orm.em.fork(), token);
    } catch (error) {
      return { ok: false, error: { code: (error as { code: string }).code, message: (error as Error).message } };
    }
    const result = await rt.runner.run(OPERATIONS[name]!, caller, input);
    const outcome: Outcome = result.ok ? { ok: true, value: result.value } : { ok: false, error: result.error.toBody() };
    responses.push(JSON.stringify(outcome));
    return outcome;
  }

  async function startAgent(spawner: User, input: Record<string, unknown> = {}) {
    const started = await ok(spawner, 'start_agent_session', { role: 'agent', ...input });
    const token = recordSecret(started.token as string);
    return { token, sessionId: started.agent_session.id as string, agentId: started.agent.id as string, lent: started.pm_connections as { id: string }[] };
  }

  before(async () => {
    fake = await new FakeJira('cloud', [aliceJira, bobJira]).start();
    rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
    alice = await makeUser(rt, { roles: ['developer'] });
    bob = await makeUser(rt, { roles: ['developer'] });
    aliceConnection = (await ok(alice, 'add_pm_connection', { provider: 'jira_cloud', base_url: fake.url, name: 'work', email: aliceJira.emailAddress, api_token: aliceJira.secret })).id;
    await ok(bob, 'add_pm_connection', { provider: 'jira_cloud', base_url: fake.url, email: bobJira.emailAddress, api_token: bobJira.secret });
    fake.addIssue('ALPHA', { summary: 'alpha work' });
    fake.addIssue('BETA', { summary: 'bob only' });
  });
  afterEach(() => assert.deepEqual(fake.takeMismatches(), []));
  after(async () => {
    keepArtifact('responses', responses.join('\n'));
    for (const user of [aliceJira, bobJira]) assert.ok(!responses.join('\n').includes(user.secret), 'no credential in any result or error');
    await fake?.stop();
    await rt?.close();
  });

  test("an agent reads and comments through alice's default connection; the fake sees alice; the audit names the agent, alice and the connection", async () => {
    const agent = await startAgent(alice);
    assert.deepEqual(agent.lent.map((c) => c.id), [aliceConnection], 'the default connection is lent when none is named');
    const before = fake.requests.length;
    const got = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
    assert.ok(got.ok, JSON.stringify(got));
    assert.equal(got.value.summary, 'alpha work');
    const commented = await asAgent(agent.token, 'add_comment', { key: 'ALPHA-1', body: 'looked at it' });
    assert.ok(commented.ok, JSON.stringify(commented));
    const seen = fake.requests.slice(before);
    assert.ok(seen.length >= 2);
    assert.ok(seen.every((r) => r.user === 'alice'), 'every request carried alice\'s credential');

    await rt.runner.audit.flush();
    const rows = (await rt.db.orm.em.fork().execute(
      `select operation, outcome, target, on_behalf_of from audit_event where actor_id = ? and operation in ('get_issue', 'add_comment') order by at`,
      [agent.agentId],
    )) as { operation: string; outcome: string; target: string; on_behalf_of: { userId: string }[] | string }[];
    assert.deepEqual(rows.map((r) => [r.operation, r.outcome]), [['get_issue', 'allowed'], ['add_comment', 'allowed']]);
    for (const row of rows) {
      assert.ok(row.target.startsWith(`pm_connection:${aliceConnection}`), row.target);
      const chain = typeof row.on_behalf_of === 'string' ? JSON.parse(row.on_behalf_of) : row.on_behalf_of;
      assert.deepEqual(chain.map((link: { userId: string }) => link.userId), [alice.id]);
    }

    const listed = await asAgent(agent.token, 'list_pm_connections');
    assert.ok(listed.ok);
    assert.deepEqual(listed.value.items, [], 'the agent owns no connection');
    assert.deepEqual(listed.value.from_spawner.map((c: { id: string }) => c.id), [aliceConnection]);
    // Lent is not owned: the agent cannot test, remove or re-default alice's connection.
    for (const name of ['remove_pm_connection', 'test_pm_connection', 'set_default_pm_connection']) {
      const result = await asAgent(agent.token, name, { id: aliceConnection });
      assert.equal(!result.ok && result.error.code, 'not_found', name);
    }
    assert.equal((await ok(alice, 'list_pm_connections')).items.length, 1, 'alice still has her connection');
  });

  test('after end_agent_session the next call is refused and the tracker sees no request, whether the agent re-authenticates or holds an old caller', async () => {
    const agent = await startAgent(alice);
    const held = await authenticateToken(rt.db.orm.em.fork(), agent.token);
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' })).ok);
    await ok(alice, 'end_agent_session', { agent_session_id: agent.sessionId });
    const before = fake.requests.length;
    const again = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(again.ok, false);
    const stale = await rt.runner.run(OPERATIONS.get_issue!, held, { key: 'ALPHA-1' });
    assert.equal(stale.ok, false, 'a caller authenticated before the end is refused too');
    assert.equal(fake.requests.length, before, 'no request reached the tracker');
  });

  for (const [what, change] of [
    ['ended', { endedAt: new Date() }],
    ['past its expiry', { expiresAt: new Date(Date.now() - 1000) }],
  ] as const) {
    test(`a session ${what} lends nothing, even to a caller that still holds its identity and its delegations`, async () => {
      const agent = await startAgent(alice);
      const held = await authenticateToken(rt.db.orm.em.fork(), agent.token);
      // The loan is checked on its own: only the session row says it is over (token and
      // delegations untouched, as before the sweep has run).
      await rt.db.orm.em.fork().nativeUpdate(AgentSession, { id: agent.sessionId }, change);
      const before = fake.requests.length;
      const result = await rt.runner.run(OPERATIONS.get_issue!, held, { key: 'ALPHA-1' });
      assert.equal(!result.ok && result.error.code, 'connection_required', JSON.stringify(result));
      assert.equal(fake.requests.length, before);
    });
  }

  test("a loan rides only on the spawner's own delegation: another user's delegation to the agent is refused, and one written anyway lends nothing once alice lost the permission", async () => {
    const carol = await makeUser(rt, { roles: ['developer'] });
    const agent = await startAgent(alice);
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' })).ok);
    const refusedDelegation = await refused(bob, 'create_delegation', { delegate_id: agent.agentId, permission: 'pm:read' });
    assert.equal(refusedDelegation.code, 'forbidden');
    assert.equal(refusedDelegation.field, 'delegate_id');
    // Defence in depth: a delegation from bob that exists anyway (written directly) does not carry alice's connection.
    await delegate(rt, carol, { id: agent.agentId } as User, 'pm:read');
    const em = rt.db.orm.em.fork();
    await em.execute(`delete from role_assignment where user_id = ?`, [alice.id]);
    try {
      const before = fake.requests.length;
      const result = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
      assert.equal(!result.ok && result.error.code, 'connection_required', JSON.stringify(result));
      assert.equal(fake.requests.length, before, "no request with alice's credential");
    } finally {
      await em.execute(`insert into role_assignment (id, user_id, role_id, created_at) select gen_random_uuid(), ?, id, now() from role where name = 'developer'`, [alice.id]);
    }
  });

  test('a deactivated spawner lends nothing, even to an agent holding a live delegation from someone else', async () => {
    const dan = await makeUser(rt, { roles: ['developer'] });
    await ok(dan, 'add_pm_connection', { provider: 'jira_cloud', base_url: fake.url, email: aliceJira.emailAddress, api_token: aliceJira.secret });
    const agent = await startAgent(dan);
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' })).ok);
    await delegate(rt, bob, { id: agent.agentId } as User, 'pm:read');
    const admin = await makeUser(rt, { roles: ['admin'] });
    await ok(admin, 'deactivate_user', { user_id: dan.id });
    const before = fake.requests.length;
    const result = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.equal(fake.requests.length, before, "no request with dan's credential");
  });

  test('an agent with a connection of its own uses it first; a lent one only when named', async () => {
    const agent = await startAgent(alice);
    const own = await asAgent(agent.token, 'add_pm_connection', { provider: 'jira_cloud', base_url: fake.url, name: 'own', email: bobJira.emailAddress, api_token: bobJira.secret });
    assert.ok(own.ok, JSON.stringify(own));
    let before = fake.requests.length;
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'BETA-2' })).ok);
    assert.ok(fake.requests.slice(before).every((r) => r.user === 'bob'), 'its own connection by default');
    before = fake.requests.length;
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1', connection: 'work' })).ok);
    assert.ok(fake.requests.slice(before).every((r) => r.user === 'alice'), 'the lent one when named');
  });

  test("alice removing the connection stops her agent at the next call; an invalid connection too; the tracker sees nothing", async () => {
    const spare = (await ok(alice, 'add_pm_connection', { provider: 'jira_cloud', base_url: fake.url, name: 'spare', email: aliceJira.emailAddress, api_token: aliceJira.secret })).id;
    const agent = await startAgent(alice, { pm_connections: ['spare'] });
    assert.deepEqual(agent.lent.map((c) => c.id), [spare]);
    assert.ok((await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' })).ok);
    await ok(alice, 'remove_pm_connection', { id: spare });
    const before = fake.requests.length;
    const after = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(!after.ok && after.error.code, 'connection_required');
    assert.match(!after.ok ? after.error.message : '', /spawner/);
    assert.equal(fake.requests.length, before);

    const other = await startAgent(alice);
    await rt.db.orm.em.fork().execute(`update pm_connection set status = 'invalid', status_reason = 'test' where id = ?`, [aliceConnection]);
    try {
      const invalid = await asAgent(other.token, 'get_issue', { key: 'ALPHA-1' });
      assert.equal(!invalid.ok && invalid.error.code, 'connection_invalid');
      assert.equal(fake.requests.length, before);
    } finally {
      await rt.db.orm.em.fork().execute(`update pm_connection set status = 'connected', status_reason = null where id = ?`, [aliceConnection]);
    }
  });

  test("bob's agent never reaches alice's connection, by id or by name; bob cannot lend it", async () => {
    const agent = await startAgent(bob);
    const before = fake.requests.length;
    for (const ref of [aliceConnection, 'work']) {
      const result = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1', connection: ref });
      assert.equal(!result.ok && result.error.code, 'not_found', ref);
    }
    assert.equal(fake.requests.length, before);
    const em = rt.db.orm.em.fork();
    const counts = async () => [
      await em.count(AgentSession, { spawner: bob.id }),
      await em.count(UserEntity, { createdById: bob.id }),
      Number(((await em.execute(`select count(*) as n from delegation where delegator_id = ?`, [bob.id])) as { n: string | number }[])[0]!.n),
      Number(((await em.execute(`select count(*) as n from api_token`)) as { n: string | number }[])[0]!.n),
    ];
    const beforeStart = await counts();
    const lend = await refused(bob, 'start_agent_session', { role: 'agent', pm_connections: [aliceConnection] });
    assert.equal(lend.code, 'not_found');
    assert.equal(lend.field, 'pm_connections.0');
    // The refused start left nothing behind: no agent user, session, token or delegation.
    assert.deepEqual(await counts(), beforeStart);
  });

  test('a human delegate of alice gets connection_required: a delegation never shares a credential', async () => {
    const carol = await makeUser(rt);
    await delegate(rt, alice, carol, 'pm:read');
    const before = fake.requests.length;
    const { call } = toolCaller(() => rt, responses);
    const result = await call(carol, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(!result.ok && result.error.code, 'connection_required');
    assert.equal((await call(carol, 'get_issue', { key: 'ALPHA-1', connection: aliceConnection })).ok, false);
    assert.equal(fake.requests.length, before);
  });

  test('pm_connections: [] lends nothing; a user typed agent without a session has no loan', async () => {
    const agent = await startAgent(alice, { pm_connections: [] });
    assert.deepEqual(agent.lent, []);
    const result = await asAgent(agent.token, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(!result.ok && result.error.code, 'connection_required');
    const em = rt.db.orm.em.fork();
    const lone = em.create(UserEntity, { name: `lone-agent-${Date.now()}`, email: `lone-${Date.now()}@agents.test`, displayName: 'lone', type: 'agent', active: true });
    await em.flush();
    await delegate(rt, alice, lone, 'pm:read');
    const direct = await rt.runner.run(OPERATIONS.get_issue!, callerOf(lone), { key: 'ALPHA-1' });
    assert.equal(!direct.ok && direct.error.code, 'connection_required');
  });
});
