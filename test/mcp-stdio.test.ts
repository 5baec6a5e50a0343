import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ApiToken, User } from '../lib/db/entities/index.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, TEST_DB } from './helpers/db.ts';
import { CORE_TOOLS, CORE_TOOLS_WITHOUT_INSTALL_WRITE, EXPECTED_TOOLS, peopleForRoles, withPmStatus } from './helpers/people.ts';
import { ENTRYPOINT, ok, ROOT, runProcess, startServer, stdioBackend, STDIO_MODES, toolError, type ProcessDatabase, type StdioMode } from './helpers/stdio.ts';

// One suite, run twice: stdio servers with their own database (local), and stdio servers with no
// database forwarding every call to a Mandate HTTP server (remote, MANDATE_URL).
for (const mode of STDIO_MODES) describe(`${mode} stdio servers`, () => suite(mode));

function suite(mode: StdioMode) {
  let db: ProcessDatabase;
  let people: Awaited<ReturnType<typeof peopleForRoles>>;

  before(async () => {
    db = await stdioBackend(mode);
    people = await db.use((runtime) => peopleForRoles(runtime));
  });
  after(() => db.dispose());

  describe('tool lists over real stdio processes', () => {
    for (const role of ['admin', 'developer', 'viewer', 'auditor', 'agent'] as const) {
      test(`AGENT_ROLE=${role}: entrypoint.sh serve lists exactly the role's tools`, async () => {
        const server = await startServer(['serve'], { ...db.env, AGENT_ROLE: role }, people[role].token, ENTRYPOINT);
        try {
          assert.deepEqual(await server.toolNames(), EXPECTED_TOOLS[role]);
          assert.equal(ok<{ user: { email: string } }>(await server.call('whoami')).user.email, people[role].email);
        } finally {
          await server.close();
        }
      });
    }

    test('one server per process: node servers/core.js and servers/admin.js serve their own toolset only', async () => {
      const core = await startServer(['servers/core.js'], db.env, people.admin.token);
      const coreTools = await core.toolNames();
      await core.close();
      const admin = await startServer(['servers/admin.js'], db.env, people.admin.token);
      const adminTools = await admin.toolNames();
      const crossCall = toolError(await admin.call('whoami'));
      await admin.close();
      assert.deepEqual(coreTools, withPmStatus(CORE_TOOLS));
      assert.equal(adminTools.length, 57);
      assert.ok(!adminTools.includes('whoami'));
      assert.equal(crossCall.code, 'forbidden');
      assert.match(crossCall.message, /whoami is not available here/);
    });
  });

  test('an admin onboards a user over stdio; the new token sees exactly the new permissions in a fresh core process', async () => {
    const adminServer = await startServer(['servers/admin.ts'], db.env, people.admin.token);
    let token: string;
    let userId: string;
    try {
      const user = ok<{ id: string }>(await adminServer.call('create_user', { email: 'new.hire@example.test', display_name: 'New Hire' }));
      userId = user.id;
      ok(await adminServer.call('assign_role', { user_id: user.id, role: 'viewer' }));
      ok(await adminServer.call('create_delegation', { delegate_id: user.id, permission: 'users:read', reason: 'onboarding buddy' }));
      const created = ok<{ token: string }>(await adminServer.call('create_token_for_user', { user_id: user.id, name: 'laptop', expires_in_days: 30 }));
      token = recordSecret(created.token);
    } finally {
      await adminServer.close();
    }

    const core = await startServer(['servers/core.ts'], db.env, token);
    try {
      const me = ok<{ user: { id: string; email: string } }>(await core.call('whoami'));
      assert.equal(me.user.id, userId);
      const mine = ok<{ permissions: { permission: string; sources: { via: string; role?: string; delegator?: { id: string } }[] }[] }>(
        await core.call('get_my_permissions'),
      );
      assert.deepEqual(mine.permissions.map((p) => p.permission), ['pm:read', 'users:read']);
      const byName = Object.fromEntries(mine.permissions.map((p) => [p.permission, p.sources]));
      assert.deepEqual(byName['pm:read'], [{ via: 'role', role: 'viewer', project_key: null }]);
      assert.equal(byName['users:read']![0]!.via, 'delegation');
      assert.equal(byName['users:read']![0]!.delegator!.id, people.admin.id);
      // viewer + a delegation: every core tool but the installing ones (no installs:write).
      assert.deepEqual(await core.toolNames(), withPmStatus(CORE_TOOLS_WITHOUT_INSTALL_WRITE));
    } finally {
      await core.close();
    }
    if (mode === 'remote') return; // a remote server's calls go over REST: no stdio session row
    const sessions = await db.use(async (rt) => rt.db.orm.em.fork().execute<{ transport: string; servers: string; client_name: string | null; ended_at: Date | null }[]>(
      'select transport, servers, client_name, ended_at from mcp_session where user_id = ?', [userId],
    ));
    assert.equal(sessions.length, 1, 'the core process was one session');
    assert.deepEqual([sessions[0]!.transport, sessions[0]!.servers, sessions[0]!.client_name], ['stdio', 'core', 'mandate-test 1.0.0']);
    assert.ok(sessions[0]!.ended_at, 'closing the process ended its session');
  });

  describe('start-up refusals: exit non-zero, one clear line on stderr, nothing on stdout', () => {
    // A local server can tell why; a remote one only hears the HTTP server's 401.
    const why = (local: RegExp) => (mode === 'local' ? local : /refused by http:\/\/127\.0\.0\.1:\d+: invalid or expired credentials/);
    const cases: [string, () => Promise<Record<string, string>>, RegExp][] = [
      ['missing token', async () => ({}), /MANDATE_TOKEN is not set/],
      ['unknown token', async () => ({ MANDATE_TOKEN: recordSecret(`mnd_${'A'.repeat(43)}`) }), why(/not known/)],
      ['not a token at all', async () => ({ MANDATE_TOKEN: recordSecret('hunter2-not-a-token') }), why(/not a Mandate API token/)],
      [
        'expired token',
        () => db.use(async (rt) => ({ MANDATE_TOKEN: recordSecret((await makeToken(rt, await makeUser(rt), { expiresAt: new Date(Date.now() - 1000) })).raw) })),
        why(/has expired/),
      ],
      [
        'revoked token',
        () =>
          db.use(async (rt) => {
            const { token, raw } = await makeToken(rt, await makeUser(rt));
            await rt.db.orm.em.fork().nativeUpdate(ApiToken, { id: token.id }, { revokedAt: new Date() });
            return { MANDATE_TOKEN: recordSecret(raw) };
          }),
        why(/has been revoked/),
      ],
      [
        'deactivated user',
        () =>
          db.use(async (rt) => {
            const user = await makeUser(rt);
            const { raw } = await makeToken(rt, user);
            await rt.db.orm.em.fork().nativeUpdate(User, { id: user.id }, { active: false });
            return { MANDATE_TOKEN: recordSecret(raw) };
          }),
        why(/deactivated user/),
      ],
    ];
    for (const [name, arrange, message] of cases) {
      test(name, async () => {
        const extra = await arrange();
        const result = await runProcess(process.execPath, ['servers/core.ts'], { ...db.env, ...extra });
        assert.notEqual(result.code, 0);
        assert.equal(result.stdout, '');
        const lines = result.stderr.trim().split('\n');
        assert.equal(lines.length, 1, `one line, got: ${result.stderr}`);
        assert.match(lines[0]!, /^mandate core: /);
        assert.match(lines[0]!, message);
      });
    }
  });

  test('stdout carries nothing but JSON-RPC messages, even with debug logging', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'servers/core.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...db.env, MANDATE_LOG_LEVEL: 'debug', MANDATE_TOKEN: people.admin.token },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const lines: string[] = [];
    const reader = createInterface({ input: child.stdout });
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    const answered = new Promise<void>((resolve) => {
      reader.on('line', (line) => {
        lines.push(line);
        if (lines.length === 3) resolve();
      });
    });
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
    send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'list_my_tokens', arguments: { include_revoked: 'yes' } } });
    await answered;
    child.stdin.end();
    await new Promise((resolve) => child.on('close', resolve));
    assert.equal(lines.length, 3);
    for (const line of lines) assert.equal(JSON.parse(line).jsonrpc, '2.0');
    if (mode === 'local') assert.match(stderr, /"msg":"operation"/, 'debug logs go to stderr');
  });

  test('a client closing stdin with calls in flight still gets every answer, and the server exits 0', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', 'servers/core.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...db.env, MANDATE_TOKEN: people.admin.token },
    });
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    const send = (message: object) => child.stdin.write(`${JSON.stringify(message)}\n`);
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    for (let id = 2; id <= 6; id++) send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: id % 2 ? 'health' : 'whoami', arguments: {} } });
    child.stdin.end();
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    const answers = lines.map((line) => JSON.parse(line) as { id: number; result?: { isError?: boolean } });
    assert.deepEqual(answers.map((a) => a.id).sort(), [1, 2, 3, 4, 5, 6]);
    assert.ok(answers.every((a) => a.result && !a.result.isError), 'every call answered successfully');
  });

  test('a running stdio server refuses the call after its own token is revoked', async () => {
    const { raw, userId } = await db.use(async (rt) => {
      const user = await makeUser(rt, { roles: ['developer'] });
      return { raw: recordSecret((await makeToken(rt, user)).raw), userId: user.id };
    });
    const server = await startServer(['servers/core.ts'], db.env, raw);
    try {
      const me = ok<{ user: { id: string }; token: { id: string } }>(await server.call('whoami'));
      assert.equal(me.user.id, userId);
      ok(await server.call('revoke_my_token', { token_id: me.token.id }));
      const refused = toolError(await server.call('whoami'));
      assert.equal(refused.code, 'unauthenticated');
      assert.match(refused.message, mode === 'local' ? /revoked/ : /invalid or expired credentials/);
    } finally {
      await server.close();
    }
  });

  const concurrent = mode === 'remote' || TEST_DB === 'postgres';
  test("deactivate_user and revoke_user_token from an admin process stop another user's running server at its next call", { skip: !concurrent && 'the embedded database serves one process at a time (local mode); the remote pass and test/mcp-privilege.test.ts cover it' }, async () => {
    const [alice, bob] = await db.use(async (rt) => {
      const make = async () => {
        const user = await makeUser(rt, { roles: ['developer'] });
        const { token, raw } = await makeToken(rt, user);
        return { id: user.id, tokenId: token.id, raw: recordSecret(raw) };
      };
      return [await make(), await make()];
    });
    const admin = await startServer(['servers/admin.ts'], db.env, people.admin.token);
    const aliceServer = await startServer(['servers/core.ts'], db.env, alice.raw);
    const bobServer = await startServer(['servers/core.ts'], db.env, bob.raw);
    try {
      ok(await aliceServer.call('whoami'));
      ok(await bobServer.call('whoami'));
      ok(await admin.call('deactivate_user', { user_id: alice.id }));
      ok(await admin.call('revoke_user_token', { user_id: bob.id, token_id: bob.tokenId }));
      assert.equal(toolError(await aliceServer.call('whoami')).code, 'unauthenticated');
      assert.equal(toolError(await bobServer.call('whoami')).code, 'unauthenticated');
    } finally {
      await Promise.all([admin.close(), aliceServer.close(), bobServer.close()]);
    }
  });
}
