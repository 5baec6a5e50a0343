// First: registers the fixture tools before the registry is built by the imports below.
import './fixtures/protocol-tools.ts';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, ToolListChangedNotificationSchema, LoggingMessageNotificationSchema, type LoggingMessageNotification, type Progress } from '@modelcontextprotocol/sdk/types.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { Session } from '../lib/db/entities/index.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { processDatabase, startServer, stdioBackend, type ProcessDatabase, type StdioMode } from './helpers/stdio.ts';
import { TEST_DB } from './helpers/db.ts';
import * as ops from '../lib/ops/index.ts';

// Operations tell the client what they are doing while they run: log messages (logging/setLevel,
// notifications/message) and progress (a request's progressToken, notifications/progress), over
// Streamable HTTP (an SSE response for that request only) and stdio.

const jiraUser: FakeUser = { accountId: '5b10a2844c20165700ede31a', name: 'nora', displayName: 'Nora Doe', emailAddress: 'nora@corp.test', secret: recordSecret('notify-jira-token-0123456789'), projects: ['NOTE'] };
let rt: TestRuntime;
let fake: FakeJira;
const servers: Server[] = [];
let base: string;
let token: string;
const seen: string[] = [];

async function httpServer(): Promise<string> {
  const server = createHttpServer(rt);
  servers.push(server);
  return `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
}

before(async () => {
  rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
  fake = await new FakeJira('cloud', [jiraUser]).start();
  fake.addIssue('NOTE', { summary: 'watched while it loads' });
  const user = await makeUser(rt, { roles: ['developer'] });
  token = recordSecret((await makeToken(rt, user)).raw);
  base = await httpServer();
});
after(async () => {
  keepArtifact('notifications', seen.join('\n'));
  for (const secret of [token, jiraUser.secret]) assert.ok(!seen.join('\n').includes(secret), 'no secret in any notification');
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await fake.stop();
  await rt.close();
});

/** An SDK client over Streamable HTTP that keeps every log message it receives. */
async function httpClient(url = base, path = '/mcp') {
  const client = new Client({ name: 'notifications-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${url}${path}`), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  await client.connect(transport);
  const logs: LoggingMessageNotification['params'][] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (notification) => {
    seen.push(JSON.stringify(notification));
    logs.push(notification.params);
  });
  return { client, logs, sessionId: transport.sessionId! };
}

/** Calls a tool asking for progress; the progress notifications in the order they came. */
async function withProgress(client: Client, name: string, args: Record<string, unknown> = {}) {
  const progress: Progress[] = [];
  const result = await client.callTool({ name, arguments: args }, CallToolResultSchema, {
    onprogress: (step) => {
      seen.push(JSON.stringify(step));
      progress.push(step);
    },
  });
  return { result, progress };
}

/** A raw POST on a session, and what came back: the content type and the body as text. */
async function rawCall(sessionId: string, body: object) {
  const response = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  seen.push(text);
  return { status: response.status, type: response.headers.get('content-type') ?? '', text };
}

describe('over Streamable HTTP', () => {
  test('initialize offers the logging capability', async () => {
    const { client } = await httpClient();
    assert.deepEqual(client.getServerCapabilities()?.logging, {});
    await client.close();
  });

  test('a call with a progressToken gets increasing progress notifications, then its result', async () => {
    const { client } = await httpClient();
    const { result, progress } = await withProgress(client, 'test_tool_with_progress');
    assert.deepEqual(result.structuredContent, { steps: 3 });
    assert.deepEqual(progress.map((p) => [p.progress, p.total, p.message]), [[1, 3, 'step 1 of 3'], [2, 3, 'step 2 of 3'], [3, 3, 'step 3 of 3']]);
    await client.close();
  });

  test('the SSE stream is for the request that asked: without a progressToken or a level the answer is JSON', async () => {
    const { client, sessionId } = await httpClient();
    const plain = await rawCall(sessionId, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'test_tool_with_progress', arguments: {} } });
    assert.equal(plain.status, 200);
    assert.match(plain.type, /^application\/json/);
    assert.doesNotMatch(plain.text, /notifications\/progress/);
    const streamed = await rawCall(sessionId, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 'tok-8' } } });
    assert.equal(streamed.status, 200);
    assert.match(streamed.type, /^text\/event-stream/);
    const events = streamed.text.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6)));
    assert.deepEqual(events.map((e) => e.method ?? `result ${e.id}`), ['notifications/progress', 'notifications/progress', 'notifications/progress', 'result 8']);
    assert.ok(events.slice(0, 3).every((e) => e.params.progressToken === 'tok-8'));
    const list = await rawCall(sessionId, { jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: { progressToken: 'tok-9' } } });
    assert.match(list.type, /^application\/json/, 'only tool calls stream');
    await client.close();
  });

  test('logging/setLevel is kept with the session: every instance filters by it', async () => {
    const { client, logs, sessionId } = await httpClient();
    const changesOf = async (subject: string) => Number(((await rt.db.orm.em.fork().execute('select count(*) as n from access_change where subject_id = ?', [subject])) as { n: string }[])[0]!.n);
    const userId = (await client.callTool({ name: 'whoami', arguments: {} })).structuredContent as { user: { id: string } };
    const [userBefore, sessionBefore] = [await changesOf(userId.user.id), await changesOf(sessionId)];
    assert.deepEqual(await client.setLoggingLevel('debug'), {});
    assert.deepEqual(await client.setLoggingLevel('debug'), {}, 'the same level again writes nothing');
    const row = await rt.db.orm.em.fork().findOneOrFail(Session, { id: sessionId });
    assert.equal(row.logLevel, 'debug');
    assert.equal(await changesOf(userId.user.id), userBefore, "the user's cached access is left alone");
    assert.equal(await changesOf(sessionId), sessionBefore + 1, 'one change of the session itself');
    await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    assert.deepEqual(logs.map((l) => l.level), ['info', 'notice', 'warning']);
    assert.equal((logs[0]!.data as { message: string }).message, 'test_tool_with_logging: info');
    await client.setLoggingLevel('warning');
    logs.length = 0;
    await client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    assert.deepEqual(logs.map((l) => l.level), ['warning'], 'below the chosen level is not sent');
    // Another instance (its own caches) serving the same session honours the level stored with it.
    const other = await httpServer();
    const events = await fetch(`${other}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'test_tool_with_logging', arguments: {} } }),
    }).then((r) => r.text());
    seen.push(events);
    const levels = events.split('\n').filter((line) => line.startsWith('data: ')).map((line) => JSON.parse(line.slice(6))).filter((e) => e.method === 'notifications/message').map((e) => e.params.level);
    assert.deepEqual(levels, ['warning']);
    await client.close();
  });

  test('logging/setLevel with a level that does not exist is -32602 naming params.level, and changes nothing', async () => {
    const { client, sessionId } = await httpClient();
    await client.setLoggingLevel('error');
    await assert.rejects(client.request({ method: 'logging/setLevel', params: { level: 'loud' } } as never, CallToolResultSchema.passthrough()), (error: { code: number; message: string; data?: { field?: string } }) => {
      assert.equal(error.code, -32602);
      assert.equal(error.data?.field, 'params.level');
      return true;
    });
    assert.equal((await rt.db.orm.em.fork().findOneOrFail(Session, { id: sessionId })).logLevel, 'error');
    await client.close();
  });

  test('what a call reports is scrubbed like its errors: a token it quotes is not sent', async () => {
    const { client, logs } = await httpClient();
    await client.setLoggingLevel('debug');
    const { progress } = await withProgress(client, 'test_tool_with_logging', { echo: `look: ${token}` });
    assert.equal(logs.length, 3);
    assert.ok(logs.every((l) => !JSON.stringify(l).includes(token)), JSON.stringify(logs));
    assert.match(JSON.stringify(logs[0]), /\[redacted\]/);
    assert.deepEqual(progress, []);
    await client.close();
  });

  test('a tracker search reports each upstream answer as progress, and a retry as a warning', async () => {
    const added = await fetch(`${base}/api/v1/user/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'jira_cloud', base_url: fake.url, email: jiraUser.emailAddress, api_token: jiraUser.secret }),
    });
    assert.equal(added.status, 201, await added.text());
    const { client, logs } = await httpClient(base, '/mcp/pm');
    fake.script.push({ match: 'POST /rest/api/3/search/jql', status: 503, headers: { 'retry-after': '0' }, body: { errorMessages: ['busy'] } });
    const { result, progress } = await withProgress(client, 'search_issues', { project: 'NOTE' });
    assert.notEqual(result.isError, true, JSON.stringify(result));
    const messages = progress.map((p) => p.message);
    assert.ok(messages.includes('the tracker answered POST /rest/api/3/search/jql with 503'), JSON.stringify(messages));
    assert.ok(messages.includes('the tracker answered POST /rest/api/3/search/jql with 200'), JSON.stringify(messages));
    assert.deepEqual(progress.map((p) => p.progress), progress.map((_, i) => i + 1));
    // Warnings reach a client that chose no level.
    assert.deepEqual(logs.map((l) => l.level), ['warning']);
    assert.match(String((logs[0]!.data as { message: string }).message), /the tracker answered 503; retrying/);
    await client.close();
  });
});

describe('over stdio', () => {
  let db: ProcessDatabase;
  let stdioToken: string;
  before(async () => {
    db = await processDatabase();
    stdioToken = await db.use(async (runtime) => {
      const user = await makeUser(runtime, { roles: ['developer'] });
      return recordSecret((await makeToken(runtime, user)).raw);
    });
  });
  after(() => db.dispose());

  test('progress and log messages reach the client; the level filters them', async () => {
    const server = await startServer(['--import', './test/fixtures/protocol-tools.ts', 'servers/core.ts'], db.env, stdioToken);
    try {
      const logs: string[] = [];
      server.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.level));
      assert.deepEqual(server.client.getServerCapabilities()?.logging, {});
      const { progress } = await withProgress(server.client, 'test_tool_with_progress');
      assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3]);
      await server.call('test_tool_with_logging');
      assert.deepEqual(logs, ['warning'], 'by default, warnings and worse');
      await server.client.setLoggingLevel('info');
      logs.length = 0;
      await server.call('test_tool_with_logging');
      assert.deepEqual(logs, ['info', 'notice', 'warning']);
    } finally {
      await server.close();
    }
  });
});

// Another process changes the user's roles while its stdio server runs. The embedded database is
// one process's alone, so there the change reaches a remote-mode server (MANDATE_URL) through the
// Mandate server in this process; on PostgreSQL a server with its own connection is watched too.
for (const mode of (TEST_DB === 'postgres' ? ['local', 'remote'] : ['remote']) as StdioMode[]) {
  describe(`tools/list_changed over stdio (${mode})`, () => {
    let db: ProcessDatabase;
    let userId: string;
    let userToken: string;
    const system = { kind: 'system', name: 'test' } as const;
    before(async () => {
      db = await stdioBackend(mode);
      [userId, userToken] = await db.use(async (runtime) => {
        const user = await makeUser(runtime, { roles: ['viewer'] });
        return [user.id, recordSecret((await makeToken(runtime, user)).raw)];
      });
    });
    after(() => db.dispose());

    test('a running server tells its client when the user\'s permissions change, then lists the new tools', async () => {
      const server = await startServer(['servers/admin.ts'], { ...db.env, MANDATE_TOOLS_WATCH_MS: '150' }, userToken);
      try {
        assert.equal(server.client.getServerCapabilities()?.tools?.listChanged, true);
        let changed = 0;
        let notify: () => void = () => undefined;
        server.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
          changed += 1;
          notify();
        });
        const nextChange = () => new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no notifications/tools/list_changed within 15 s')), 15_000);
          notify = () => (clearTimeout(timer), resolve());
        });
        const asViewer = await server.toolNames();
        assert.ok(!asViewer.includes('query_audit'), 'a viewer is not shown query_audit');
        const promoted = nextChange();
        const assigned = await db.use((runtime) => runtime.runner.run(ops.assignRole, system, { user_id: userId, role: 'auditor' }));
        assert.ok(assigned.ok, JSON.stringify(assigned));
        await promoted;
        const asAuditor = await server.toolNames();
        assert.ok(asAuditor.includes('query_audit') && asAuditor.length > asViewer.length, `${asViewer.length} -> ${asAuditor.length}`);
        const demoted = nextChange();
        const removed = await db.use((runtime) => runtime.runner.run(ops.removeRole, system, { user_id: userId, role: 'auditor' }));
        assert.ok(removed.ok, JSON.stringify(removed));
        await demoted;
        assert.deepEqual(await server.toolNames(), asViewer);
        assert.equal(changed, 2, 'one notification per change');
      } finally {
        await server.close();
      }
    });
  });
}
