import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { OPERATIONS } from '../../lib/ops/index.ts';
import { checkBaseUrl, forbiddenAddress } from '../../lib/pm/net-guard.ts';
import { callerOf } from '../helpers/fixtures.ts';
import { mcpSession } from '../helpers/mcp.ts';
import { recordSecret } from '../helpers/db.ts';
import { FakeJira, type FakeUser } from '../helpers/fake-jira.ts';
import { attackRig, type Person, type Rig } from './rig.ts';

// Findings 5, 6 and 8: hostile input is a clear 400 on its field (never a 500), identifiers cannot
// walk out of the tracker path, oversized bodies are not read, the SSRF guard sees every form of
// an internal address, and a tracker quoting the credentials back never shows them, in any encoding.

let rig: Rig;
let admin: Person;
let fake: FakeJira;
let dev: Person;
const jiraToken = recordSecret(`attack-jira-token-${Math.random().toString(36).slice(2)}`);
const jiraUser: FakeUser = { accountId: '5b10a2844c20165700ede21a', name: 'dev', displayName: 'Dev', emailAddress: 'dev@corp.test', secret: jiraToken, projects: ['ACME'] };

before(async () => {
  fake = await new FakeJira('cloud', [jiraUser]).start();
  fake.addIssue('ACME');
  rig = await attackRig({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_PM_MAX_RETRIES: '0' } });
  admin = await rig.admin();
  dev = await rig.person(['pm:read', 'pm:write']);
  const added = await rig.api('POST', '/api/v1/user/credentials', dev.token, { provider: 'jira_cloud', base_url: fake.url, email: jiraUser.emailAddress, api_token: jiraToken });
  assert.equal(added.status, 201, added.text);
});
after(async () => {
  await rig.close();
  await fake.stop();
});

const noInternalErrors = () => assert.ok(!rig.rt.logs.join('').includes('operation failed unexpectedly'), 'no call failed as an internal error');

describe('finding 6: hostile text is an invalid input on its field, never a 500', () => {
  test('NUL characters and lone surrogates in any string field, query or path', async () => {
    const victim = await rig.person([]);
    const cases: [string, string, unknown, string][] = [
      ['PATCH', `/api/admin/users/${victim.id}`, { display_name: 'a\u0000b' }, 'display_name'],
      ['POST', '/api/me/tokens', { name: 'token\u0000name' }, 'name'],
      ['POST', '/api/admin/roles', { name: 'nul-role', description: 'd\u0000', permissions: ['pm:read'] }, 'description'],
      ['POST', '/api/admin/delegations', { delegate_id: victim.id, permission: 'users:read', reason: 'why\u0000' }, 'reason'],
      ['POST', '/api/agent-sessions', { role: 'agent', label: 'l\u0000' }, 'label'],
      ['POST', '/api/mcp_catalog', { name: 'nul-entry', description: 'x\u0000', transport: 'remote', url: 'https://mcp.example.com/mcp' }, 'description'],
      ['GET', '/api/admin/users?search=%00', undefined, 'search'],
      ['GET', '/api/admin/roles/%00', undefined, 'role'],
      ['POST', '/api/me/tokens', '{"name":"\\ud800"}', 'name'],
      ['POST', '/api/admin/users', '{"email":"a@example.test","display_name":"\\udfff tail"}', 'display_name'],
      ['POST', '/api/me/tokens', '{"name":"ok","\\u0000key":1}', '(input)'],
      ['GET', '/api/me?__proto__=x', undefined, '__proto__'],
      ['POST', '/api/me/tokens', '{"name":"ok","__proto__":{"admin":true}}', '__proto__'],
    ];
    for (const [method, path, body, field] of cases) {
      const answer = await rig.api(method, path, admin.token, body);
      assert.equal(answer.status, 400, `${method} ${path}: ${answer.text}`);
      assert.equal(answer.body.error.code, 'invalid_input');
      assert.equal(answer.body.error.field, field, `${method} ${path}`);
    }
    noInternalErrors();
  });

  test('crafted cursors: a valid structure with a 36-dash id, a date the database cannot hold, garbage', async () => {
    const cursor = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const bad of [cursor(['2026-01-01T00:00:00.000Z', '-'.repeat(36)]), cursor(['+275760-09-13T00:00:00.000Z', crypto.randomUUID()]), cursor(['2026-01-01', crypto.randomUUID()]), cursor({ at: 1 }), 'not-a-cursor']) {
      for (const path of ['/api/admin/users', '/api/admin/audit', '/api/admin/delegations', '/api/admin/roles/admin/members']) {
        const answer = await rig.api('GET', `${path}?cursor=${encodeURIComponent(bad)}`, admin.token);
        assert.equal(answer.status, 400, `${path} ${bad}: ${answer.text}`);
        assert.equal(answer.body.error.field, 'cursor');
      }
    }
    noInternalErrors();
  });

  test('deeply nested and very large input', async () => {
    // Written as text: the client's own JSON.stringify could not write it either.
    const deep = `{"project":"ACME","type":"Task","summary":"deep","fields":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const answer = await rig.api('POST', '/api/pm/issues', dev.token, deep);
    assert.equal(answer.status, 400, answer.text);
    assert.match(answer.body.error.message, /nested more than/);
    const wide = await rig.api('POST', '/api/pm/issues', dev.token, { project: 'ACME', type: 'Task', summary: 'wide', fields: { list: Array.from({ length: 30_000 }, () => 1) } });
    assert.equal(wide.status, 400, wide.text);
    assert.equal(fake.calls('POST', '/rest/api/3/issue').length, 0, 'nothing reached the tracker');
    noInternalErrors();
  });
});

describe('finding 8: smaller ones', () => {
  test('an identifier ".." cannot leave the tracker path: refused, and no request reaches the tracker', async () => {
    const before = fake.requests.length;
    for (const [tool, input] of [['get_issue', { key: '..' }], ['get_issue', { key: '%2e%2e' }], ['edit_comment', { key: 'ACME-1', comment_id: '..', body: 'x' }], ['get_project', { key: '..' }]] as const) {
      const result = await rig.rt.runner.run(OPERATIONS[tool]!, callerOf(dev.user), input);
      assert.equal(!result.ok && result.error.code, 'invalid_input', `${tool} ${JSON.stringify(input)}`);
    }
    assert.equal(fake.requests.length, before);
  });

  test('tool names of Object.prototype on a read-only server are unknown tools (-32602), not -32603', async () => {
    const viewer = await rig.person(['pm:read', 'users:read']);
    const session = await mcpSession(rig.rt, callerOf(viewer.user), ['core', 'admin'], true);
    try {
      for (const name of ['constructor', 'toString', '__proto__', 'valueOf', 'hasOwnProperty']) {
        await assert.rejects(session.call(name), { code: -32602, message: /unknown tool/ }, name);
      }
    } finally {
      await session.close();
    }
  });

  for (const mode of ['content-length', 'chunked'] as const) {
    test(`a body over 1 MiB (${mode}) is answered 413 and the connection closed, not read to its end`, async () => {
      const { port } = new URL(rig.base);
      const total = 110 * 1024 * 1024;
      const result = await new Promise<{ response: string; sent: number }>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1');
        let response = '';
        let sent = 0;
        let closed = false;
        socket.on('data', (chunk) => (response += chunk));
        socket.on('close', () => {
          closed = true;
          resolve({ response, sent });
        });
        socket.on('error', () => undefined);
        const head = mode === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${total}`;
        socket.write(`POST /api/me/tokens HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${dev.token}\r\ncontent-type: application/json\r\n${head}\r\n\r\n`);
        const chunk = Buffer.alloc(64 * 1024, 'a');
        const pump = () => {
          while (!closed && sent < total) {
            const framed = mode === 'chunked' ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
            sent += chunk.length;
            if (!socket.write(framed)) return void socket.once('drain', pump);
          }
        };
        pump();
        setTimeout(() => reject(new Error(`still open after 20 s, ${sent} bytes sent`)), 20_000).unref();
      });
      assert.match(result.response, /^HTTP\/1\.1 413/);
      assert.ok(result.sent < 32 * 1024 * 1024, `the server read ${result.sent} bytes before closing`);
    });
  }

  test('the SSRF guard sees IPv4 inside IPv6 (mapped, compatible, NAT64) and "localhost."', async () => {
    const policy = { allow: new Set<never>(), allowHttp: false };
    for (const address of ['::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '::7f00:1', '::a00:1', '64:ff9b::7f00:1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::c0a8:1', '::ffff:169.254.169.254']) {
      assert.ok(forbiddenAddress(address, policy), `${address} must be refused`);
    }
    assert.equal(forbiddenAddress('64:ff9b::808:808', policy), null, 'NAT64 of a public address is fine');
    for (const url of ['https://localhost./', 'https://LOCALHOST../', 'https://[::ffff:7f00:1]/', 'https://[64:ff9b::a00:1]/']) {
      assert.throws(() => checkBaseUrl(url, policy), (error: Error) => /loopback|private|not a routable/.test(error.message), url);
    }
  });
});

describe('finding 5: a tracker quoting the credentials back never shows them', () => {
  test('in the tool error (REST and MCP) and the audit event: raw, base64 of email:token, URL-encoded, JSON-escaped', async () => {
    const basicHeader = `Basic ${Buffer.from(`${jiraUser.emailAddress}:${jiraToken}`).toString('base64')}`;
    const quoted = [`you sent Authorization: ${basicHeader}`, `token=${encodeURIComponent(`${jiraUser.emailAddress}:${jiraToken}`)}`, `raw ${JSON.stringify({ t: jiraToken }).slice(1, -1)}`, `b64 ${Buffer.from(jiraToken).toString('base64url')}`];
    const forms = [jiraToken, Buffer.from(`${jiraUser.emailAddress}:${jiraToken}`).toString('base64'), encodeURIComponent(jiraToken), Buffer.from(jiraToken).toString('base64url'), Buffer.from(jiraToken).toString('base64')];
    const leaks = (text: string) => forms.filter((form) => text.includes(form));
    fake.script.push({ match: 'GET /rest/api/3/issue/ACME-1', status: 400, body: { errorMessages: quoted } });
    const rest = await rig.api('GET', '/api/pm/issues/ACME-1', dev.token);
    assert.equal(rest.status, 400, rest.text);
    assert.deepEqual(leaks(rest.text), []);
    assert.match(rest.text, /\[redacted\]/);
    fake.script.push({ match: 'GET /rest/api/3/issue/ACME-1', status: 500, body: { errorMessages: quoted } });
    const session = await mcpSession(rig.rt, callerOf(dev.user), ['pm']);
    try {
      const result = await session.call('get_issue', { key: 'ACME-1' });
      assert.equal(result.isError, true);
      assert.deepEqual(leaks(JSON.stringify(result)), []);
    } finally {
      await session.close();
    }
    fake.script.push({ match: 'GET /rest/api/3/issue/ACME-1', status: 200, body: { id: '10000', key: 'ACME-1', fields: { summary: quoted.join(' | '), status: { name: 'To Do' }, project: { key: 'ACME', name: 'Acme' } } } });
    const ok = await rig.api('GET', '/api/pm/issues/ACME-1', dev.token);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(leaks(ok.text), [], 'a successful result quoting them is scrubbed too');
    const audit = JSON.stringify(await rig.rt.auditRows());
    assert.deepEqual(leaks(audit), []);
    assert.deepEqual(leaks(rig.rt.logs.join('')), []);
  });
});
