import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { localBackend } from '../lib/mcp/backend.ts';
import { createMcpServer } from '../lib/mcp/server.ts';
import { localCatalog } from '../lib/mcp/local-catalog.ts';
import { SERVERS } from '../servers/index.ts';
import { callerOf, makeUser } from './helpers/fixtures.ts';
import { testRuntime, type TestRuntime } from './helpers/db.ts';

let rt: TestRuntime;
let client: Client;
before(async () => {
  rt = await testRuntime();
  const admin = callerOf(await makeUser(rt, { roles: ['admin'] }));
  const server = createMcpServer({ catalog: localCatalog([SERVERS.core!, SERVERS.admin!]), backend: localBackend(rt, admin) });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  client = new Client({ name: 'test', version: '1.0.0' });
  await client.connect(clientSide);
});
after(async () => {
  await client.close();
  await rt.close();
});

test('every tool carries a title, a description written for a model, JSON input and output schemas and annotations', async () => {
  const { tools } = await client.listTools();
  // core + admin: 70 tools, and core's list_pm_connections.
  assert.equal(tools.length, 71);
  for (const tool of tools) {
    assert.ok(tool.title && tool.title.length > 3, `${tool.name}: title`);
    assert.ok(tool.description && tool.description.length >= 60, `${tool.name}: description says what, when and what it returns`);
    assert.equal(tool.inputSchema.type, 'object', tool.name);
    assert.equal((tool.inputSchema as { additionalProperties?: boolean }).additionalProperties, false, `${tool.name}: unknown fields are refused`);
    assert.equal(typeof tool.annotations?.readOnlyHint, 'boolean', tool.name);
    assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: an output schema`);
    assert.equal((tool.outputSchema as { additionalProperties?: boolean }).additionalProperties, false, `${tool.name}: every result field is declared`);
  }
  const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
  assert.equal(byName.list_users!.annotations!.readOnlyHint, true);
  assert.equal(byName.deactivate_user!.annotations!.destructiveHint, true);
  assert.equal(byName.deactivate_user!.annotations!.readOnlyHint, false);
  assert.equal(byName.assign_role!.annotations!.idempotentHint, true);
  const permission = (byName.create_delegation!.inputSchema.properties as Record<string, { enum?: string[] }>).permission!;
  assert.ok(permission.enum?.includes('pm:read') && permission.enum.includes('audit:read'), 'the catalogue is in the schema');
  assert.deepEqual(byName.create_token_for_user!.inputSchema.required?.sort(), ['name', 'user_id']);
});

test('results are structured JSON with the same JSON as text; errors are tool errors with their JSON as text; only an unknown tool is a protocol error', async () => {
  const result = await client.callTool({ name: 'list_permissions', arguments: {} });
  assert.equal(result.isError, undefined);
  assert.deepEqual(JSON.parse((result.content as { text: string }[])[0]!.text), result.structuredContent);
  const failed = await client.callTool({ name: 'get_user', arguments: { user_id: 'nope' } });
  assert.equal(failed.isError, true);
  const error = JSON.parse((failed.content as { text: string }[])[0]!.text).error;
  assert.equal(error.code, 'invalid_input');
  assert.match(error.message, /user_id/);
  assert.equal(failed.structuredContent, undefined, 'an error carries no structuredContent: clients check that against the outputSchema');
  await assert.rejects(client.callTool({ name: 'drop_database', arguments: {} }), { code: -32602, message: /unknown tool "drop_database"/ });
});
