import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CORE_TOOLS, peopleForRoles, withPmStatus } from './helpers/people.ts';
import { ok, startServer, stdioBackend, toolError, type ProcessDatabase } from './helpers/stdio.ts';

// Remote mode (MANDATE_URL) is how DESIGN.md has agents run: no database in their container. So a
// stdio server in remote mode serves what the Mandate server publishes of its MCP servers
// (GET /api/mcp/tools) and loads neither the registry of operations nor the ORM.
let db: ProcessDatabase;
let people: Awaited<ReturnType<typeof peopleForRoles>>;
let dir: string;
before(async () => {
  db = await stdioBackend('remote');
  people = await db.use((runtime) => peopleForRoles(runtime));
  dir = mkdtempSync(join(tmpdir(), 'mandate-remote-start-'));
});
after(async () => {
  await db.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const DATABASE_CODE = /node_modules\/(@mikro-orm|pg|pg-pool|@electric-sql|kysely|argon2)\/|\/lib\/(db|ops|access)\/|\/lib\/runtime\.ts/;

test('a remote-mode stdio server lists, calls and refuses without loading the ORM or the operations', async () => {
  const record = join(dir, 'modules.txt');
  const server = await startServer(['--import', './test/fixtures/record-modules.mjs', 'servers/core.js'], { ...db.env, RECORD_MODULES_TO: record }, people.developer!.token);
  try {
    assert.deepEqual(await server.toolNames(), withPmStatus(CORE_TOOLS));
    assert.equal(ok<{ user: { email: string } }>(await server.call('whoami')).user.email, people.developer!.email);
    // An admin tool is Mandate's, but not this server's: refused with why, not "unknown tool".
    const refused = toolError(await server.call('create_user', { email: 'x@example.test' }));
    assert.equal(refused.code, 'forbidden');
    assert.match(refused.message, /create_user is not available here \(mandate-core does not serve it\)/);
    await assert.rejects(server.call('no_such_tool'), /unknown tool "no_such_tool"/);
  } finally {
    await server.close();
  }
  const loaded = readFileSync(record, 'utf8').split('\n');
  assert.ok(loaded.some((url) => url.includes('/lib/mcp/remote.ts')), 'the record is of the server that ran');
  assert.deepEqual(loaded.filter((url) => DATABASE_CODE.test(url)), [], 'no database or operation module was loaded');
});

test('GET /api/mcp/tools: what a deployment serves as its MCP servers; a wrong query is a 400 naming the parameter', async () => {
  const get = async (query: string) => {
    const response = await fetch(`${db.env.MANDATE_URL}/api/mcp/tools${query}`);
    return { status: response.status, body: (await response.json()) as Record<string, any> };
  };
  // Public, like the OpenAPI document: no credentials needed to learn what the interface is.
  const core = await get('?servers=core');
  assert.equal(core.status, 200);
  assert.equal(core.body.name, 'mandate-core');
  assert.deepEqual(core.body.tools.map((tool: { descriptor: { name: string } }) => tool.descriptor.name).sort(), withPmStatus(CORE_TOOLS));
  const whoami = core.body.tools.find((tool: { descriptor: { name: string } }) => tool.descriptor.name === 'whoami');
  assert.deepEqual(whoami.route, { method: 'GET', path: '/api/me' });
  assert.equal(whoami.descriptor.inputSchema.type, 'object');
  assert.match(core.body.not_served.create_user, /mandate-core does not serve it/);
  assert.equal(core.body.gateway, null);

  const readOnly = await get('?servers=core,admin&read_only=true');
  assert.equal(readOnly.status, 200);
  assert.ok(readOnly.body.tools.every((tool: { descriptor: { annotations: { readOnlyHint: boolean } } }) => tool.descriptor.annotations.readOnlyHint), 'read-only tools only');
  assert.match(readOnly.body.not_served.create_user, /read-only tools only/);
  assert.ok((await get('?servers=gateway')).body.gateway.call.route.path.startsWith('/api/'), 'the gateway\'s operations come with their routes');

  for (const [query, field, message] of [
    ['', 'servers', /required/],
    ['?servers=core,root', 'servers', /"root" is not a Mandate MCP server/],
    [`?servers=${'x'.repeat(5000)}`, 'servers', /is not a Mandate MCP server/],
    ['?servers=core%00', 'servers', /is not a Mandate MCP server/],
    ['?servers=core&read_only=yes', 'read_only', /expected true or false/],
  ] as const) {
    const refused = await get(query);
    assert.equal(refused.status, 400, query.slice(0, 40));
    assert.equal(refused.body.error.code, 'invalid_input');
    assert.equal(refused.body.error.field, field);
    assert.match(refused.body.error.message, message);
    assert.ok(refused.body.error.message.length < 200, 'the refusal does not echo a huge input back');
  }
});
