import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { User } from '../../lib/db/entities/index.ts';
import { operation } from '../../lib/ops/operation.ts';
import { toolDescriptor } from '../../lib/mcp/toolset.ts';
import { callerOf, makeProject } from '../helpers/fixtures.ts';
import { recordSecret } from '../helpers/db.ts';
import { attackRig, basic, heldAnywhere, type Rig } from './rig.ts';

// Finding 1 of the attack report and the properties P1-P4 of DESIGN.md (Access), tried from the
// attacker's side over the REST face: each refused where it must be, and nothing left behind.

let rig: Rig;
before(async () => {
  rig = await attackRig();
});
after(() => rig.close());

const tokenRows = async (userId: string) =>
  (await rig.rt.db.orm.em.fork().execute<{ id: string; created_by_id: string | null; expires_at: Date | null; source_delegation_id: string | null }[]>(
    'select * from api_token where user_id = ?',
    [userId],
  ));

describe('finding 1: one admin permission does not make a full admin', () => {
  test('tokens:write alone cannot mint a token for an admin', async () => {
    const admin = await rig.admin();
    const attacker = await rig.person(['tokens:write']);
    const before = (await tokenRows(admin.id)).length;
    const answer = await rig.api('POST', `/api/admin/users/${admin.id}/tokens`, attacker.token, { name: 'mine now' });
    assert.equal(answer.status, 403, answer.text);
    assert.match(answer.body.error.message, /holds permissions you do not \(.*users:write.*\)/);
    assert.equal((await tokenRows(admin.id)).length, before, 'no token was stored for the admin');
  });

  test('users:write alone cannot reset an admin\'s password, change their email, deactivate or delete them', async () => {
    const password = recordSecret('the admin keeps this one 1');
    const admin = await rig.person(['users:read', 'users:write', 'roles:write', 'tokens:write', 'audit:read'], { password });
    const attacker = await rig.person(['users:write']);
    const stolen = recordSecret('attacker chose this password');
    const calls: [string, string, unknown][] = [
      ['POST', `/api/admin/users/${admin.id}/password`, { password: stolen }],
      ['PATCH', `/api/admin/users/${admin.id}`, { email: 'attacker-inbox@example.test' }],
      ['POST', `/api/admin/users/${admin.id}/deactivate`, undefined],
      ['DELETE', `/api/admin/users/${admin.id}`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const answer = await rig.api(method, path, attacker.token, body);
      assert.equal(answer.status, 403, `${method} ${path}: ${answer.text}`);
    }
    assert.equal((await rig.api('GET', '/api/me', basic(admin.email, stolen))).status, 401, 'the attacker\'s password does not sign in');
    const me = await rig.api('GET', '/api/me', basic(admin.email, password));
    assert.equal(me.status, 200, 'the admin is untouched: same password, same email, active');
    assert.equal(me.body.user.email, admin.email);
  });

  test('delegations:write cannot create a delegation in the admin\'s name, so nothing follows from it', async () => {
    const admin = await rig.admin();
    const attacker = await rig.person(['delegations:write']);
    const victim = await rig.person(['pm:read']);
    const answer = await rig.api('POST', '/api/admin/delegations', attacker.token, { delegator_id: admin.id, delegate_id: attacker.id, permission: 'users:write' });
    assert.equal(answer.status, 403, answer.text);
    assert.equal(answer.body.error.field, 'delegator_id');
    assert.deepEqual([...(await heldAnywhere(rig.rt, attacker.id))], ['delegations:write']);
    assert.equal((await rig.api('POST', `/api/admin/users/${victim.id}/deactivate`, attacker.token)).status, 403);
    // It still revokes anyone's delegation: what delegations:write is for.
    const given = await rig.api('POST', '/api/admin/delegations', admin.token, { delegate_id: victim.id, permission: 'users:read' });
    assert.equal(given.status, 200, given.text);
    assert.equal((await rig.api('DELETE', `/api/admin/delegations/${given.body.id}`, attacker.token)).status, 200);
  });

  test('delegated roles:write + users:read cannot be laundered into a role of one\'s own, nor delegated onward', async () => {
    const admin = await rig.admin();
    const launderer = await rig.delegatedPerson(admin, ['roles:write', 'users:read']);
    const accomplice = await rig.person([]);
    const role = await rig.api('POST', '/api/admin/roles', launderer.token, { name: `laundry-${Date.now()}`, permissions: ['roles:write', 'users:read'] });
    assert.equal(role.status, 200, 'creating a role from live delegated permissions is handing out, which the delegator allowed');
    const self = await rig.api('POST', `/api/admin/users/${launderer.id}/roles`, launderer.token, { role: role.body.name });
    assert.equal(self.status, 403, self.text);
    assert.match(self.body.error.message, /cannot assign a role to yourself/);
    const onward = await rig.api('POST', '/api/admin/delegations', launderer.token, { delegate_id: accomplice.id, permission: 'users:read' });
    assert.equal(onward.status, 403, 'no re-delegation');
    for (const id of launderer.delegationIds) assert.equal((await rig.api('DELETE', `/api/admin/delegations/${id}`, admin.token)).status, 200);
    assert.deepEqual([...(await heldAnywhere(rig.rt, launderer.id))], [], 'nothing kept after the delegations end');
    assert.equal((await rig.api('GET', '/api/admin/users', launderer.token)).status, 403);
  });

  test('an admin\'s agent session mints nothing that outlives it: tokens for its spawner or a new admin die with it, passwords are refused', async () => {
    const admin = await rig.admin();
    const started = await rig.api('POST', '/api/agent-sessions', admin.token, { role: 'agent', delegate_admin: true, lifetime_minutes: 5 });
    assert.equal(started.status, 200, started.text);
    const agentToken = recordSecret(started.body.token);
    const sessionEnds = new Date(started.body.agent_session.expires_at).getTime();
    const forSpawner = await rig.api('POST', `/api/admin/users/${admin.id}/tokens`, agentToken, { name: 'long', expires_in_days: 365 });
    assert.equal(forSpawner.status, 200, forSpawner.text);
    const spawnerToken = recordSecret(forSpawner.body.token);
    assert.ok(new Date(forSpawner.body.expires_at).getTime() <= sessionEnds, 'capped at the agent session\'s end, not 365 days');
    const withPassword = await rig.api('POST', '/api/admin/users', agentToken, { email: `ghost-${Date.now()}@example.test`, password: recordSecret('ghost admin password'), roles: ['admin'] });
    assert.equal(withPassword.status, 403, withPassword.text);
    assert.equal(withPassword.body.error.field, 'password');
    const ghost = await rig.api('POST', '/api/admin/users', agentToken, { email: `ghost2-${Date.now()}@example.test`, roles: ['admin'] });
    assert.equal(ghost.status, 200, ghost.text);
    const ghostToken = await rig.api('POST', `/api/admin/users/${ghost.body.id}/tokens`, agentToken, { name: 'ghost', expires_in_days: 365 });
    assert.equal(ghostToken.status, 200, ghostToken.text);
    const ghostRaw = recordSecret(ghostToken.body.token);
    assert.equal((await rig.api('GET', '/api/me', spawnerToken)).status, 200, 'working while the session lives');
    assert.equal((await rig.api('DELETE', `/api/agent-sessions/${started.body.agent_session.id}`, admin.token)).status, 200);
    for (const token of [spawnerToken, ghostRaw, agentToken]) {
      const after = await rig.api('GET', '/api/admin/users', token);
      assert.ok(after.status === 401 || after.status === 403, `a token minted by the agent still works: ${after.text}`);
    }
  });

  test('roles:write cannot rewrite or delete a role holding a permission the caller lacks', async () => {
    const admin = await rig.admin();
    const owner = await rig.person(['users:write', 'users:read']);
    const ops = await rig.api('POST', '/api/admin/roles', admin.token, { name: `ops-${Date.now()}`, permissions: ['users:write', 'users:read'] });
    assert.equal((await rig.api('POST', `/api/admin/users/${owner.id}/roles`, admin.token, { role: ops.body.name })).status, 200);
    const attacker = await rig.person(['roles:write', 'users:read', 'roles:read']);
    const rewrite = await rig.api('PATCH', `/api/admin/roles/${ops.body.name}`, attacker.token, { permissions: ['users:read'] });
    assert.equal(rewrite.status, 403, rewrite.text);
    assert.match(rewrite.body.error.message, /users:write/);
    const drop = await rig.api('DELETE', `/api/admin/roles/${ops.body.name}?cascade=true`, attacker.token);
    assert.equal(drop.status, 403, drop.text);
    assert.ok((await heldAnywhere(rig.rt, owner.id)).has('users:write'), 'the role and its member are untouched');
  });
});

describe('P1: no self-escalation, nothing kept after the grant ends', () => {
  test('a token a delegate mints for itself carries the delegation only while it lives', async () => {
    const admin = await rig.admin();
    const delegate = await rig.delegatedPerson(admin, ['users:read']);
    const mine = await rig.api('POST', '/api/me/tokens', delegate.token, { name: 'spare' });
    assert.equal(mine.status, 200, mine.text);
    const spare = recordSecret(mine.body.token);
    assert.equal((await rig.api('GET', '/api/admin/users', spare)).status, 200);
    await rig.api('DELETE', `/api/admin/delegations/${delegate.delegationIds[0]}`, admin.token);
    assert.equal((await rig.api('GET', '/api/admin/users', spare)).status, 403);
  });

  test('a token minted through a delegation dies when the delegator loses the permission', async () => {
    const boss = await rig.person(['tokens:write', 'users:read']);
    const helper = await rig.delegatedPerson(boss, ['tokens:write']);
    const service = await rig.person([], { type: 'service' });
    const minted = await rig.api('POST', `/api/admin/users/${service.id}/tokens`, helper.token, { name: 'svc' });
    assert.equal(minted.status, 200, minted.text);
    const raw = recordSecret(minted.body.token);
    const [row] = (await tokenRows(service.id)).filter((t) => t.id === minted.body.id);
    assert.equal(row!.source_delegation_id, helper.delegationIds[0], 'the token names the delegation it was minted through');
    assert.equal((await rig.api('GET', '/api/me', raw)).status, 200);
    await rig.rt.db.orm.em.fork().execute('delete from role_assignment where user_id = ?', [boss.id], 'run');
    const refused = await rig.api('GET', '/api/me', raw);
    assert.equal(refused.status, 401, refused.text);
    assert.match(refused.body.error.message, /delegation or agent session that has ended/);
  });
});

describe('P2: acting on another principal needs every permission it holds, in every scope', () => {
  test('a project-scoped permission of the target must be held in that project (or globally)', async () => {
    await makeProject(rig.rt, 'ACME');
    await makeProject(rig.rt, 'BETA');
    const target = await rig.person([['pm:write', 'ACME']]);
    const outsider = await rig.person(['users:write', ['pm:write', 'BETA']]);
    const refused = await rig.api('POST', `/api/admin/users/${target.id}/deactivate`, outsider.token);
    assert.equal(refused.status, 403, refused.text);
    assert.match(refused.body.error.message, /pm:write in project ACME/);
    const insider = await rig.person(['users:write', ['pm:write', 'ACME']]);
    assert.equal((await rig.api('POST', `/api/admin/users/${target.id}/deactivate`, insider.token)).status, 200);
  });

  test('sessions:write cannot end an admin\'s sessions; tokens:write cannot revoke an admin\'s token; users:write cannot end another spawner\'s agent', async () => {
    const admin = await rig.admin();
    const [adminToken] = await tokenRows(admin.id);
    const ender = await rig.person(['sessions:write']);
    assert.equal((await rig.api('DELETE', `/api/admin/users/${admin.id}/sessions`, ender.token)).status, 403);
    const revoker = await rig.person(['tokens:write']);
    assert.equal((await rig.api('DELETE', `/api/admin/users/${admin.id}/tokens/${adminToken!.id}`, revoker.token)).status, 403);
    assert.equal((await rig.api('GET', '/api/me', admin.token)).status, 200);
    const agent = await rig.api('POST', '/api/agent-sessions', admin.token, { role: 'agent', delegate_admin: true });
    recordSecret(agent.body.token);
    const stopper = await rig.person(['users:write']);
    assert.equal((await rig.api('DELETE', `/api/agent-sessions/${agent.body.agent_session.id}`, stopper.token)).status, 403);
  });

  test('lateral downward is fine: an admin acts on a user holding less', async () => {
    const helpdesk = await rig.person(['users:write', 'tokens:write', 'pm:read']);
    const user = await rig.person(['pm:read']);
    const minted = await rig.api('POST', `/api/admin/users/${user.id}/tokens`, helpdesk.token, { name: 'for you' });
    assert.equal(minted.status, 200, minted.text);
    recordSecret(minted.body.token);
    assert.equal((await rig.api('POST', `/api/admin/users/${user.id}/deactivate`, helpdesk.token)).status, 200);
  });
});

describe('P3: a mandate cannot outlive its source', () => {
  test('a token minted through an expiring delegation expires with it', async () => {
    const boss = await rig.person(['tokens:write']);
    const until = new Date(Date.now() + 30 * 60_000);
    const helper = await rig.delegatedPerson(boss, ['tokens:write'], { expiresAt: until });
    const service = await rig.person([], { type: 'service' });
    const minted = await rig.api('POST', `/api/admin/users/${service.id}/tokens`, helper.token, { name: 'svc', expires_in_days: 365 });
    assert.equal(minted.status, 200, minted.text);
    recordSecret(minted.body.token);
    assert.equal(new Date(minted.body.expires_at).getTime(), until.getTime());
  });

  test('a delegate cannot set passwords, nor hand a delegated permission to itself through a role it holds', async () => {
    const admin = await rig.admin();
    const delegate = await rig.delegatedPerson(admin, ['users:write', 'roles:write']);
    const fresh = await rig.person([]);
    const reset = await rig.api('POST', `/api/admin/users/${fresh.id}/password`, delegate.token, { password: recordSecret('set through a delegation') });
    assert.equal(reset.status, 403, reset.text);
    assert.equal(reset.body.error.field, 'password');
    const mine = await rig.api('POST', '/api/admin/roles', admin.token, { name: `mine-${Date.now()}`, permissions: ['pm:read'] });
    assert.equal((await rig.api('POST', `/api/admin/users/${delegate.id}/roles`, admin.token, { role: mine.body.name })).status, 200);
    const grow = await rig.api('PATCH', `/api/admin/roles/${mine.body.name}`, delegate.token, { permissions: ['pm:read', 'roles:write'] });
    assert.equal(grow.status, 403, grow.text);
    assert.match(grow.body.error.message, /hand it to yourself/);
  });
});

describe('P4: listing and annotations are not authorisation', () => {
  test('an operation whose hints claim read-only still runs as the write it declares: in a transaction, with MCP hints derived from its effect', async () => {
    const email = `mislabelled-${Date.now()}@example.test`;
    const mislabelled = operation({
      name: 'test_mislabelled_write',
      servers: [],
      route: { method: 'POST', path: '/api/test/mislabelled' },
      title: 'test',
      description: 'test',
      input: z.strictObject({}),
      output: z.strictObject({}),
      permission: 'users:write',
      effect: 'write',
      annotations: { readOnlyHint: true, openWorldHint: false } as never,
      async run(ctx) {
        ctx.em.create(User, { name: `mislabelled-${Date.now()}`, email, displayName: 'x', type: 'human', active: true });
        await ctx.em.flush();
        throw new Error('fails after writing');
      },
    });
    assert.equal(toolDescriptor(mislabelled).annotations.readOnlyHint, false, 'the hint comes from the effect');
    const writer = await rig.person(['users:write']);
    const result = await rig.rt.runner.run(mislabelled, callerOf(writer.user), {});
    assert.equal(result.ok, false);
    assert.equal(await rig.rt.db.orm.em.fork().count(User, { email }), 0, 'rolled back: it ran in a transaction');
    const outsider = await rig.person(['users:read']);
    const refused = await rig.rt.runner.run(mislabelled, callerOf(outsider.user), {});
    assert.equal(!refused.ok && refused.error.code, 'forbidden', 'the guard ran although nothing listed it');
  });
});

describe('admin agents still onboard under these rules (DESIGN.md, Access)', () => {
  test('create a user, assign roles, delegate in the spawner\'s name, and issue a service token; what the agent minted ends with it', async () => {
    const admin = await rig.admin();
    const started = await rig.api('POST', '/api/agent-sessions', admin.token, { role: 'agent', delegate_admin: true, lifetime_minutes: 60 });
    const agent = recordSecret(started.body.token);
    const hire = await rig.api('POST', '/api/admin/users', agent, { email: `hire-${Date.now()}@example.test`, roles: ['developer'] });
    assert.equal(hire.status, 200, hire.text);
    const delegation = await rig.api('POST', '/api/admin/delegations', agent, { delegate_id: hire.body.id, permission: 'users:read', reason: 'onboarding' });
    assert.equal(delegation.status, 200, delegation.text);
    assert.equal(delegation.body.delegator_id, admin.id, 'in the spawner\'s name');
    assert.ok(new Date(delegation.body.expires_at).getTime() <= new Date(started.body.agent_session.expires_at).getTime());
    const foreign = await rig.person(['users:read']);
    const wrongName = await rig.api('POST', '/api/admin/delegations', agent, { delegator_id: foreign.id, delegate_id: hire.body.id, permission: 'users:read' });
    assert.equal(wrongName.status, 403, 'never in anyone else\'s name');
    const service = await rig.api('POST', '/api/admin/users', agent, { email: `svc-${Date.now()}@example.test`, type: 'service', roles: ['viewer'] });
    const token = await rig.api('POST', `/api/admin/users/${service.body.id}/tokens`, agent, { name: 'ci' });
    assert.equal(token.status, 200, token.text);
    const serviceToken = recordSecret(token.body.token);
    assert.equal((await rig.api('GET', '/api/me', serviceToken)).status, 200);
    assert.ok((await heldAnywhere(rig.rt, hire.body.id)).has('users:read'));
    await rig.api('DELETE', `/api/agent-sessions/${started.body.agent_session.id}`, admin.token);
    assert.equal((await rig.api('GET', '/api/me', serviceToken)).status, 401, 'the token the agent minted ends with it');
    const kept = await heldAnywhere(rig.rt, hire.body.id);
    assert.ok(!kept.has('users:read'), 'the delegation it gave ends with it');
    assert.ok(kept.has('pm:write'), 'the roles it assigned (the spawner\'s own to give) stay');
  });
});
