import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { PM_CONNECTION_TOOLS } from './helpers/people.ts';
import { specsMissing } from './helpers/openapi.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';

// The PM credential routes and tools over HTTP: /api/v1/user/credentials, /api/pm/..., MCP with
// X-MCP-Toolsets narrowing, and a deployment that serves only some toolsets.

const jiraUser: FakeUser = { accountId: '5b10a2844c20165700ede21g', name: 'alice', displayName: 'Alice Doe', emailAddress: 'alice@corp.test', secret: recordSecret('faces-jira-token-0123456789'), projects: ['ALPHA'] };
const BASE_ENV = { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' };
let fake: FakeJira;
const stack: { rt: TestRuntime; server: Server }[] = [];
const responses: string[] = [];

async function deployment(env: Record<string, string> = {}) {
  const rt = await testRuntime({ env: { ...BASE_ENV, ...env } });
  const server = createHttpServer(rt);
  const base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  stack.push({ rt, server });
  const person = async (roles: string[]) => {
    const user = await makeUser(rt, { roles });
    return { id: user.id, token: recordSecret((await makeToken(rt, user)).raw) };
  };
  const rest = async (token: string, method: string, path: string, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.text();
    responses.push(text);
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  const mcp = async (token: string, headers: Record<string, string> = {}) => {
    const client = new Client({ name: 'pm-faces', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/pm`), { requestInit: { headers: { authorization: `Bearer ${token}`, ...headers } } }));
    return client;
  };
  return { rt, base, person, rest, mcp };
}

before(async () => {
  fake = await new FakeJira('cloud', [jiraUser]).start();
  fake.addIssue('ALPHA', { summary: 'over http' });
});

after(async () => {
  keepArtifact('responses', responses.join('\n'));
  assert.ok(!responses.join('\n').includes(jiraUser.secret));
  for (const { rt, server } of stack) {
    server.closeAllConnections();
    server.close();
    await rt.close();
  }
  await fake.stop();
  // Request conformance is pm-jira.test.ts's subject; here it is checked when the documents exist.
  if (!specsMissing()) assert.deepEqual(fake.takeMismatches(), []);
});

test('/api/v1/user/credentials: add (201), list with status, delete; another user\'s id is 404', async () => {
  const d = await deployment();
  const alice = await d.person(['developer']);
  const bob = await d.person(['developer']);
  const added = await d.rest(alice.token, 'POST', '/api/v1/user/credentials', { provider: 'jira_cloud', base_url: fake.url, email: jiraUser.emailAddress, api_token: jiraUser.secret });
  assert.equal(added.status, 201);
  assert.equal(added.body.status, 'connected');
  assert.ok(!JSON.stringify(added.body).includes(jiraUser.secret));
  const listed = await d.rest(alice.token, 'GET', '/api/v1/user/credentials');
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.items.map((c: any) => c.id), [added.body.id]);
  assert.deepEqual(listed.body.providers.map((p: any) => [p.provider, p.status]), [['jira_cloud', 'connected'], ['jira_dc', 'not_connected'], ['redmine', 'not_connected'], ['openproject', 'not_connected']]);
  const badCursor = await d.rest(alice.token, 'GET', '/api/v1/user/credentials?cursor=junk');
  assert.equal(badCursor.status, 400, 'a cursor this list did not hand out is the client\'s mistake');
  assert.equal(badCursor.body.error.field, 'cursor');
  const issues = await d.rest(alice.token, 'GET', '/api/pm/issues?project=ALPHA&limit=5');
  assert.equal(issues.status, 200);
  assert.equal(issues.body.items[0].summary, 'over http');
  const ssrf = await d.rest(alice.token, 'POST', '/api/v1/user/credentials', { provider: 'jira_cloud', base_url: 'https://169.254.169.254', email: 'a@b.test', api_token: 'x-token-value' });
  assert.equal(ssrf.status, 400);
  assert.equal(ssrf.body.error.field, 'base_url');
  const wrongProviderField = await d.rest(alice.token, 'POST', '/api/v1/user/credentials', { provider: 'jira_dc', base_url: fake.url, api_key: 'k-123456' });
  assert.equal(wrongProviderField.status, 400);
  assert.equal(wrongProviderField.body.error.field, 'api_key');
  assert.equal((await d.rest(bob.token, 'DELETE', `/api/v1/user/credentials/${added.body.id}`)).status, 404);
  const none = await d.rest(bob.token, 'GET', '/api/pm/issues');
  assert.equal(none.status, 409);
  assert.equal(none.body.error.code, 'connection_required');
  assert.equal((await d.rest(alice.token, 'DELETE', `/api/v1/user/credentials/${added.body.id}`)).status, 200);
  assert.deepEqual((await d.rest(alice.token, 'GET', '/api/v1/user/credentials')).body.items, []);
});

test('X-MCP-Toolsets narrows the pm tools a session lists and may call', async () => {
  const d = await deployment();
  const alice = await d.person(['developer']);
  await d.rest(alice.token, 'POST', '/api/v1/user/credentials', { provider: 'jira_cloud', base_url: fake.url, email: jiraUser.emailAddress, api_token: jiraUser.secret });
  const narrowed = await d.mcp(alice.token, { 'x-mcp-toolsets': 'comments' });
  const names = (await narrowed.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, [...PM_CONNECTION_TOOLS, 'list_pm_connections', 'add_comment', 'edit_comment', 'list_comments'].sort());
  const outside = await narrowed.callTool({ name: 'search_issues', arguments: {} });
  assert.equal(outside.isError, true);
  assert.match(errorOfToolResult(outside).message, /toolset "issues" is not enabled/);
  await narrowed.close();
  const everything = await d.mcp(alice.token);
  assert.ok((await everything.listTools()).tools.some((t) => t.name === 'search_issues'));
  await everything.close();
  const bad = await fetch(`${d.base}/mcp/pm`, {
    method: 'POST',
    headers: { authorization: `Bearer ${alice.token}`, 'x-mcp-toolsets': 'issues,teleport', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
  });
  assert.equal(bad.status, 400);
  const error = ((await bad.json()) as { error: { code: number; data: { field: string }; message: string } }).error;
  assert.equal(error.code, -32600, 'a JSON-RPC Invalid Request');
  assert.equal(error.data.field, 'X-MCP-Toolsets');
  assert.match(error.message, /unknown toolset teleport/);
});

test('a deployment serves only its toolsets; delete_issue only where deleting is enabled', async () => {
  const narrow = await deployment({ MANDATE_PM_TOOLSETS: 'issues' });
  const admin = await narrow.person(['admin']);
  const client = await narrow.mcp(admin.token);
  const names = (await client.listTools()).tools.map((t) => t.name);
  await client.close();
  assert.ok(names.includes('search_issues') && names.includes('add_pm_connection'));
  assert.ok(!names.includes('list_projects') && !names.includes('delete_issue'));
  assert.equal((await narrow.rest(admin.token, 'GET', '/api/pm/projects')).status, 404);
  // The path is get_issue's, so DELETE there is a method the route does not allow.
  assert.equal((await narrow.rest(admin.token, 'DELETE', '/api/pm/issues/ALPHA-1')).status, 405);

  const deleting = await deployment({ MANDATE_PM_ALLOW_DELETE: 'true' });
  const admin2 = await deleting.person(['admin']);
  const client2 = await deleting.mcp(admin2.token);
  const tools = (await client2.listTools()).tools;
  await client2.close();
  const del = tools.find((t) => t.name === 'delete_issue');
  assert.ok(del, 'served where enabled');
  assert.equal(del.annotations?.destructiveHint, true);
  assert.equal(tools.find((t) => t.name === 'search_issues')!.annotations?.readOnlyHint, true);
  assert.equal(tools.find((t) => t.name === 'create_issue')!.annotations?.openWorldHint, true);
});
