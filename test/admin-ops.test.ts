import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import type { Caller, UserCaller } from '../lib/identity/caller.ts';
import { authenticatePassword, authenticateToken } from '../lib/identity/authenticate.ts';
import { callerOf, delegate, makeProject, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mcpSession } from './helpers/mcp.ts';

let rt: TestRuntime;
let admin: UserCaller;

before(async () => {
  rt = await testRuntime();
  admin = callerOf(await makeUser(rt, { roles: ['admin'] }));
});
after(() => rt.close());

async function run<T = any>(op: AnyOperation, caller: Caller, input: unknown): Promise<T> {
  const result = await rt.runner.run(op, caller, input);
  if (!result.ok) throw result.error;
  return result.value as T;
}

async function fails(op: AnyOperation, caller: Caller, input: unknown) {
  const result = await rt.runner.run(op, caller, input);
  assert.equal(result.ok, false, `${op.name} should fail`);
  return (result as { error: { code: string; message: string; field?: string } }).error;
}

describe('users', () => {
  test('list_users pages with an opaque cursor, searches name/email, filters type and active', async () => {
    const tag = `pg${Date.now().toString(36)}`;
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await run(ops.createUser, admin, { email: `${tag}-${i}@example.test`, type: i === 4 ? 'service' : 'human' }));
    const first = await run(ops.listUsers, admin, { search: tag, limit: 2 });
    assert.equal(first.items.length, 2);
    assert.ok(first.next_cursor);
    const second = await run(ops.listUsers, admin, { search: tag, limit: 2, cursor: first.next_cursor });
    const third = await run(ops.listUsers, admin, { search: tag, limit: 2, cursor: second.next_cursor });
    assert.equal(third.next_cursor, null);
    const seen = [...first.items, ...second.items, ...third.items].map((u: { id: string }) => u.id);
    assert.deepEqual(seen, created.map((u) => u.id));
    assert.deepEqual((await run(ops.listUsers, admin, { search: tag, type: 'service' })).items.map((u: { id: string }) => u.id), [created[4].id]);
    await run(ops.deactivateUser, admin, { user_id: created[0].id });
    assert.equal((await run(ops.listUsers, admin, { search: tag, active: false })).items.length, 1);
    assert.equal((await fails(ops.listUsers, admin, { cursor: 'garbage' })).field, 'cursor');
    assert.equal((await fails(ops.listUsers, admin, { limit: 101 })).field, 'limit');
  });

  test('get_user shows roles, active delegations and token metadata, never a token or hash', async () => {
    const user = await makeUser(rt, { roles: ['developer'] });
    const { raw } = await makeToken(rt, user);
    recordSecret(raw);
    await delegate(rt, (await makeUser(rt, { roles: ['admin'] })), user, 'users:read');
    const got = await run(ops.getUser, admin, { user_id: user.id });
    assert.deepEqual(got.roles.map((r: { role: string }) => r.role), ['developer']);
    assert.equal(got.delegations.received.length, 1);
    assert.equal(got.tokens.length, 1);
    const text = JSON.stringify(got);
    assert.ok(!text.includes(raw) && !/hash/i.test(text));
  });

  test('update_user changes fields and reports a taken email as a conflict on that field', async () => {
    const a = await run(ops.createUser, admin, { email: `upd-a-${Date.now()}@example.test` });
    const b = await run(ops.createUser, admin, { email: `upd-b-${Date.now()}@example.test` });
    const updated = await run(ops.updateUser, admin, { user_id: a.id, display_name: 'Ada' });
    assert.equal(updated.display_name, 'Ada');
    const clash = await fails(ops.updateUser, admin, { user_id: a.id, email: b.email });
    assert.deepEqual([clash.code, clash.field], ['conflict', 'email']);
    // The admin agents' contract calls it with user_id alone: nothing changes, the user comes back.
    assert.equal((await run(ops.updateUser, admin, { user_id: a.id })).display_name, 'Ada');
  });

  test('deactivate_user revokes every token and ends every session at once; reactivate lets it sign in again without old tokens', async () => {
    const user = await makeUser(rt, { roles: ['developer'] });
    const tokens = [await makeToken(rt, user), await makeToken(rt, user)];
    tokens.forEach((t) => recordSecret(t.raw));
    const session = await mcpSession(rt, callerOf(user, tokens[0]!.token.id), ['core']);
    const result = await run(ops.deactivateUser, admin, { user_id: user.id });
    assert.deepEqual([result.active, result.tokens_revoked, result.sessions_ended], [false, 2, 1]);
    await session.close();
    for (const t of tokens) await assert.rejects(authenticateToken(rt.db.orm.em.fork(), t.raw));
    const back = await run(ops.reactivateUser, admin, { user_id: user.id });
    assert.equal(back.active, true);
    await assert.rejects(authenticateToken(rt.db.orm.em.fork(), tokens[0]!.raw), 'old tokens stay revoked');
  });

  test('an admin cannot deactivate or delete itself, nor remove the last admin', async () => {
    const lone = await testRuntime();
    try {
      const only = callerOf(await makeUser(lone, { roles: ['admin'] }));
      const self = await lone.runner.run(ops.deactivateUser, only, { user_id: only.userId });
      assert.equal(!self.ok && self.error.field, 'user_id');
      const system = { kind: 'system' as const, name: 'test' };
      const last = await lone.runner.run(ops.deactivateUser, system, { user_id: only.userId });
      assert.equal(!last.ok && last.error.code, 'conflict');
      const removeRole = await lone.runner.run(ops.removeRole, system, { user_id: only.userId, role: 'admin' });
      assert.equal(!removeRole.ok && removeRole.error.code, 'conflict');
    } finally {
      await lone.close();
    }
  });

  test('delete_user is refused while the user owns delegations or agents, and cascades when asked', async () => {
    const owner = await makeUser(rt, { roles: ['developer'] });
    const other = await makeUser(rt);
    await delegate(rt, owner, other, 'pm:read');
    const refused = await fails(ops.deleteUser, admin, { user_id: owner.id });
    assert.deepEqual([refused.code, refused.field], ['conflict', 'cascade']);
    const started = await run(ops.startAgentSession, callerOf(owner), { role: 'agent' });
    recordSecret(started.token);
    const deleted = await run(ops.deleteUser, admin, { user_id: owner.id, cascade: true });
    assert.deepEqual([deleted.deleted, deleted.delegations_removed, deleted.agent_sessions_ended], [true, 4, 1]);
    assert.equal((await fails(ops.getUser, admin, { user_id: owner.id })).code, 'not_found');
    assert.equal((await run(ops.getUser, admin, { user_id: started.agent.id })).active, false, "the owner's agent was ended");
  });

  test('reset_password sets a new password, ends password sessions, and never shows it', async () => {
    const user = await run(ops.createUser, admin, { email: `pw-${Date.now()}@example.test`, password: recordSecret('first-password-1') });
    const result = await run(ops.resetPassword, admin, { user_id: user.id, password: recordSecret('second-password-2') });
    assert.ok(!JSON.stringify(result).includes('second-password-2'));
    await assert.rejects(authenticatePassword(rt.db.orm.em.fork(), user.email, 'first-password-1'));
    assert.equal((await authenticatePassword(rt.db.orm.em.fork(), user.email, 'second-password-2')).userId, user.id);
    assert.equal((await fails(ops.resetPassword, admin, { user_id: user.id, password: 'short' })).field, 'password');
  });
});

describe('roles', () => {
  test('custom roles: create, get, update, list members, delete (refused while assigned unless cascade); system roles are read-only', async () => {
    const role = await run(ops.createRole, admin, { name: 'Triager', description: 'triage', permissions: ['pm:read', 'users:read'] });
    assert.equal(role.name, 'triager');
    assert.equal((await fails(ops.createRole, admin, { name: 'triager', permissions: ['pm:read'] })).code, 'conflict');
    const user = await makeUser(rt);
    await run(ops.assignRole, admin, { user_id: user.id, role: 'triager' });
    const members = await run(ops.listRoleMembers, admin, { role: 'triager' });
    assert.deepEqual(members.items.map((m: { user: { id: string } }) => m.user.id), [user.id]);
    await run(ops.updateRole, admin, { role: 'triager', permissions: ['pm:read'] });
    const perms = await run(ops.getUserPermissions, admin, { user_id: user.id });
    assert.deepEqual(perms.permissions.map((p: { permission: string }) => p.permission), ['pm:read']);
    assert.equal((await fails(ops.deleteRole, admin, { role: 'triager' })).field, 'cascade');
    const deleted = await run(ops.deleteRole, admin, { role: role.id, cascade: true });
    assert.equal(deleted.assignments_removed, 1);
    assert.equal((await fails(ops.deleteRole, admin, { role: 'viewer' })).code, 'invalid_input');
    assert.equal((await fails(ops.updateRole, admin, { role: 'developer', permissions: ['pm:read'] })).code, 'invalid_input');
    assert.equal((await fails(ops.getRole, admin, { role: 'nope' })).code, 'not_found');
    const roles = await run(ops.listRoles, admin, {});
    assert.ok(roles.items.some((r: { name: string; system: boolean }) => r.name === 'admin' && r.system));
  });

  test('assign_role for a project and remove_role by role or by assignment id', async () => {
    await makeProject(rt, 'ROLEP');
    const user = await makeUser(rt);
    const assignment = await run(ops.assignRole, admin, { user_id: user.id, role: 'developer', project_key: 'rolep' });
    assert.equal(assignment.project_key, 'ROLEP');
    assert.equal((await run(ops.getUserPermissions, admin, { user_id: user.id })).permissions.length, 0, 'nothing globally');
    assert.equal((await run(ops.getUserPermissions, admin, { user_id: user.id, project_key: 'ROLEP' })).permissions.length, 4);
    await run(ops.removeRole, admin, { user_id: user.id, assignment_id: assignment.id });
    assert.equal((await fails(ops.removeRole, admin, { user_id: user.id, role: 'developer', project_key: 'ROLEP' })).code, 'not_found');
    assert.equal((await fails(ops.removeRole, admin, { user_id: user.id })).field, 'role');
  });

  test('list_permissions is the catalogue with descriptions', async () => {
    const { items } = await run(ops.listPermissions, admin, {});
    assert.equal(items.length, 19);
    assert.ok(items.every((p: { description: string }) => p.description.length > 10));
  });
});

describe('delegations, tokens, sessions, audit', () => {
  test('list_delegations filters; get_delegation is visible to its parties and to delegations:read only', async () => {
    const from = await makeUser(rt, { roles: ['developer'] });
    const to = await makeUser(rt);
    const stranger = callerOf(await makeUser(rt, { roles: ['developer'] }));
    const made = await run(ops.createDelegation, callerOf(from), { delegate_id: to.id, permission: 'pm:read' });
    assert.deepEqual((await run(ops.listDelegations, admin, { delegator_id: from.id })).items.map((d: { id: string }) => d.id), [made.id]);
    assert.equal((await run(ops.getDelegation, callerOf(to), { delegation_id: made.id })).active, true);
    assert.equal((await fails(ops.getDelegation, stranger, { delegation_id: made.id })).code, 'forbidden');
    await run(ops.revokeDelegation, admin, { delegation_id: made.id });
    assert.equal((await run(ops.listDelegations, admin, { delegator_id: from.id })).items.length, 0);
    assert.equal((await run(ops.listDelegations, admin, { delegator_id: from.id, include_inactive: true })).items.length, 1);
  });

  test('tokens for a user: created once with the raw value, listed without it, revoked', async () => {
    const user = await makeUser(rt, { roles: ['developer'] });
    const created = await run(ops.createTokenForUser, admin, { user_id: user.id, name: 'ci', scopes: ['pm:read'] });
    recordSecret(created.token);
    const listed = await run(ops.listUserTokens, admin, { user_id: user.id });
    assert.equal(listed.items.length, 1);
    assert.ok(!JSON.stringify(listed).includes(created.token));
    assert.equal((await fails(ops.createTokenForUser, admin, { user_id: user.id, name: 'x', expires_in_days: 366 })).field, 'expires_in_days');
    assert.equal((await fails(ops.createTokenForUser, admin, { user_id: user.id, name: 'x', scopes: ['audit:read'] })).field, 'scopes');
    const revoked = await run(ops.revokeUserToken, admin, { user_id: user.id, token_id: created.id });
    assert.ok(revoked.revoked_at);
    assert.equal((await run(ops.listUserTokens, admin, { user_id: user.id })).items.length, 0);
    assert.equal((await run(ops.listUserTokens, admin, { user_id: user.id, include_revoked: true })).items.length, 1);
  });

  test('sessions: listed per user, one or all ended', async () => {
    const user = await makeUser(rt, { roles: ['developer'] });
    const a = await mcpSession(rt, callerOf(user), ['core']);
    const b = await mcpSession(rt, callerOf(user), ['core', 'pm']);
    const listed = await run(ops.listUserSessions, admin, { user_id: user.id });
    assert.equal(listed.items.length, 2);
    assert.equal((await run(ops.revokeUserSessions, admin, { user_id: user.id, session_id: a.caller.sessionId })).sessions_ended, 1);
    assert.equal((await run(ops.listUserSessions, admin, { user_id: user.id })).items.length, 1);
    assert.equal((await fails(ops.revokeUserSessions, admin, { user_id: user.id, session_id: admin.userId })).code, 'not_found');
    await Promise.all([a.close(), b.close()]);
  });

  test('query_audit filters by actor, operation, outcome and time, newest first, paginated', async () => {
    const actor = callerOf(await makeUser(rt, { roles: ['developer'] }));
    const since = new Date(Date.now() - 1000).toISOString();
    await rt.runner.run(ops.listUsers, actor, {});
    await rt.runner.run(ops.whoami, actor, {});
    await rt.runner.run(ops.whoami, actor, {});
    const all = await run(ops.queryAudit, admin, { actor_id: actor.userId, since });
    assert.deepEqual(all.items.map((e: { operation: string }) => e.operation), ['whoami', 'whoami', 'list_users']);
    const denied = await run(ops.queryAudit, admin, { actor_id: actor.userId, outcome: 'denied' });
    assert.deepEqual(denied.items.map((e: { operation: string }) => e.operation), ['list_users']);
    const page1 = await run(ops.queryAudit, admin, { actor_id: actor.userId, limit: 2 });
    const page2 = await run(ops.queryAudit, admin, { actor_id: actor.userId, limit: 2, cursor: page1.next_cursor });
    assert.deepEqual([page1.items.length, page2.items.length, page2.next_cursor], [2, 1, null]);
    assert.equal((await run(ops.queryAudit, admin, { actor_id: actor.userId, until: since })).items.length, 0);
    assert.equal((await fails(ops.queryAudit, admin, { since, until: since })).field, 'until');
  });
});
