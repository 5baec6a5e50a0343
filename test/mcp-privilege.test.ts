import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { operationsOf } from '../lib/ops/index.ts';
import { callerOf, makeRole, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mcpSession } from './helpers/mcp.ts';
import { ok, toolError } from './helpers/stdio.ts';
import { ADMIN_ONLY_TOOLS } from './helpers/people.ts';

let rt: TestRuntime;
before(async () => {
  rt = await testRuntime();
});
after(() => rt.close());

async function userWith(roles: string[], type: 'human' | 'agent' = 'human') {
  const user = await makeUser(rt, { roles, type });
  const { token, raw } = await makeToken(rt, user);
  recordSecret(raw);
  return { user, caller: callerOf(user, token.id), tokenId: token.id };
}

async function auditFor(userId: string, operation: string) {
  return (await rt.auditRows()).filter((row) => row.actor_id === userId && row.operation === operation);
}

test('a developer calling every admin tool by name is refused, the refusal names the permission, and each is audited as denied', async () => {
  const dev = await userWith(['developer']);
  const session = await mcpSession(rt, dev.caller, ['admin']);
  try {
    const listed = await session.toolNames();
    // Tools with no permission of their own (the operation checks per input), and the installation
    // tools a developer's installs:write opens (for itself; for others they need installs:admin).
    assert.deepEqual(
      listed,
      [
        'create_delegation', 'get_delegation', 'get_mcp_catalog_entry', 'get_mcp_server', 'install_mcp_server', 'list_mcp_catalog',
        'list_mcp_server_tools', 'list_mcp_servers', 'revoke_delegation', 'set_mcp_server_tool_enabled', 'test_mcp_server',
        'uninstall_mcp_server', 'update_mcp_server',
      ],
    );
    for (const op of operationsOf('admin')) {
      if (op.permission === null) continue;
      const error = toolError(await session.call(op.name, {}));
      // Invalid input is reported before permission for an empty call; a valid-looking call must hit the guard.
      assert.ok(['forbidden', 'invalid_input'].includes(error.code), `${op.name}: ${error.code}`);
    }
    const createUser = toolError(await session.call('create_user', { email: 'x@example.test' }));
    assert.equal(createUser.code, 'forbidden');
    assert.match(createUser.message, /create_user needs users:write/);
    const listUsers = toolError(await session.call('list_users', {}));
    assert.match(listUsers.message, /list_users needs users:read/);
    const denied = await auditFor(dev.user.id, 'list_users');
    assert.deepEqual(denied.map((row) => row.outcome), ['denied', 'denied'], 'both calls of list_users are audited');
  } finally {
    await session.close();
  }
});

test('on a server without the admin toolset, an admin tool called by name is refused and audited', async () => {
  const dev = await userWith(['developer']);
  const session = await mcpSession(rt, dev.caller, ['core', 'pm']);
  try {
    for (const name of ADMIN_ONLY_TOOLS) {
      const error = toolError(await session.call(name, {}));
      assert.equal(error.code, 'forbidden', name);
    }
    assert.equal((await auditFor(dev.user.id, 'deactivate_user'))[0]?.outcome, 'denied');
    await assert.rejects(session.call('no_such_tool', {}), { code: -32602, data: { code: 'not_found', field: 'params.name' } });
  } finally {
    await session.close();
  }
});

test('a read-only server refuses writing tools even to an admin', async () => {
  const admin = await userWith(['admin']);
  const session = await mcpSession(rt, admin.caller, ['core', 'admin'], true);
  try {
    const error = toolError(await session.call('create_user', { email: 'ro@example.test' }));
    assert.equal(error.code, 'forbidden');
    assert.match(error.message, /read-only/);
    assert.ok(!(await session.toolNames()).includes('create_user'));
  } finally {
    await session.close();
  }
});

test('listing follows permissions; a hidden tool called by name is refused by the guard', async () => {
  await makeRole(rt, 'user-reader', ['users:read']);
  const reader = await userWith(['user-reader']);
  const session = await mcpSession(rt, reader.caller, ['admin']);
  try {
    const tools = await session.toolNames();
    assert.ok(tools.includes('list_users') && tools.includes('get_user'));
    assert.ok(!tools.includes('create_user') && !tools.includes('deactivate_user'));
    ok(await session.call('list_users', {}));
    const refused = toolError(await session.call('deactivate_user', { user_id: reader.user.id }));
    assert.equal(refused.code, 'forbidden');
    assert.match(refused.message, /users:write/);
  } finally {
    await session.close();
  }
});

test('a user cannot delegate a permission it does not hold, nor pass on a delegated one', async () => {
  const dev = await userWith(['developer']);
  const other = await userWith(['viewer']);
  const session = await mcpSession(rt, dev.caller, ['core', 'admin']);
  try {
    const notHeld = toolError(await session.call('create_delegation', { delegate_id: other.user.id, permission: 'users:write' }));
    assert.equal(notHeld.code, 'forbidden');
    assert.match(notHeld.message, /users:write/);
    ok(await session.call('create_delegation', { delegate_id: other.user.id, permission: 'pm:write' }));
  } finally {
    await session.close();
  }
  const third = await userWith(['viewer']);
  const otherSession = await mcpSession(rt, other.caller, ['admin']);
  try {
    const again = toolError(await otherSession.call('create_delegation', { delegate_id: third.user.id, permission: 'pm:write' }));
    assert.equal(again.code, 'forbidden', 're-delegation is refused');
  } finally {
    await otherSession.close();
  }
});

test('roles:write cannot escalate: a role cannot be given, or grown into, permissions the caller lacks', async () => {
  await makeRole(rt, 'role-manager', ['roles:write', 'roles:read', 'users:read']);
  const manager = await userWith(['role-manager']);
  const session = await mcpSession(rt, manager.caller, ['admin']);
  try {
    assert.equal(toolError(await session.call('assign_role', { user_id: manager.user.id, role: 'admin' })).code, 'forbidden');
    assert.equal(toolError(await session.call('update_role', { role: 'role-manager', permissions: ['roles:write', 'users:write'] })).code, 'forbidden');
    assert.equal(toolError(await session.call('create_role', { name: 'sneaky', permissions: ['audit:read'] })).code, 'forbidden');
    assert.equal(toolError(await session.call('update_role', { role: 'admin', description: 'mine now' })).code, 'invalid_input');
  } finally {
    await session.close();
  }
});

test('an agent cannot mint a token with more than it has, and its unscoped token carries no more than it holds', async () => {
  const spawner = await userWith(['developer']);
  const spawnerSession = await mcpSession(rt, spawner.caller, ['core']);
  const started = ok<{ token: string; agent: { id: string } }>(await spawnerSession.call('start_agent_session', { role: 'agent' }));
  recordSecret(started.token);
  await spawnerSession.close();
  const agentCaller = { kind: 'user' as const, userId: started.agent.id, name: 'agent', email: 'agent@x', type: 'agent' as const };
  const { authenticateToken } = await import('../lib/identity/authenticate.ts');
  const viaToken = await authenticateToken(rt.db.orm.em.fork(), started.token);
  const session = await mcpSession(rt, { ...agentCaller, tokenId: viaToken.tokenId! }, ['core']);
  try {
    const beyond = toolError(await session.call('create_my_token', { name: 'more', scopes: ['users:write'] }));
    assert.equal(beyond.code, 'invalid_input');
    assert.equal(beyond.field, 'scopes');
    const longer = toolError(await session.call('create_my_token', { name: 'longer', expires_in_days: 30 }));
    assert.equal(longer.field, 'expires_in_days', 'cannot outlive the agent token');
    const minted = ok<{ token: string; expires_at: string }>(await session.call('create_my_token', { name: 'copy' }));
    recordSecret(minted.token);
    const mintedCaller = await authenticateToken(rt.db.orm.em.fork(), minted.token);
    const held = await rt.resolver.resolve(rt.db.orm.em.fork(), mintedCaller);
    assert.deepEqual([...held.grants.keys()].sort(), ['installs:use', 'pm:read', 'pm:write']);
  } finally {
    await session.close();
  }
});

test('an already-running server stops at the next call after deactivate_user, revoke_user_token or revoke_user_sessions', async () => {
  const admin = await userWith(['admin']);
  const adminSession = await mcpSession(rt, admin.caller, ['admin']);
  const victims = await Promise.all([userWith(['developer']), userWith(['developer']), userWith(['developer'])]);
  const sessions = await Promise.all(victims.map((v) => mcpSession(rt, v.caller, ['core'])));
  try {
    for (const s of sessions) ok(await s.call('whoami'));
    ok(await adminSession.call('deactivate_user', { user_id: victims[0]!.user.id }));
    ok(await adminSession.call('revoke_user_token', { user_id: victims[1]!.user.id, token_id: victims[1]!.tokenId }));
    const ended = ok<{ sessions_ended: number }>(await adminSession.call('revoke_user_sessions', { user_id: victims[2]!.user.id }));
    assert.equal(ended.sessions_ended, 1);
    const errors = await Promise.all(sessions.map(async (s) => toolError(await s.call('whoami'))));
    assert.deepEqual(errors.map((e) => e.code), ['unauthenticated', 'unauthenticated', 'unauthenticated']);
    assert.match(errors[0]!.message, /deactivated/);
    assert.match(errors[1]!.message, /revoked/);
    assert.match(errors[2]!.message, /session has been ended/);
    assert.deepEqual(await sessions[0]!.toolNames(), [], 'a dead caller is listed no tools');
  } finally {
    await Promise.all([adminSession.close(), ...sessions.map((s) => s.close())]);
  }
});
