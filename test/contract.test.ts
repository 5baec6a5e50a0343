import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Runtime } from '../lib/runtime.ts';
import { makeProject, makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret } from './helpers/db.ts';
import { ROOT, startServer, stdioBackend, type ProcessDatabase, type ServerProcess } from './helpers/stdio.ts';

// The admin agents' contract (../shared/contracts/admin-tools.json): each of its 14 tools called
// exactly as the plan defines them, with every argument and with only the required ones, over stdio
// (a real `servers/admin.ts` process) and over Streamable HTTP. A refused argument fails the test.

const CONTRACT = join(ROOT, '..', 'shared', 'contracts', 'admin-tools.json');
const missing = existsSync(CONTRACT) ? false : `the contract is not at ${CONTRACT}`;
interface ContractTool {
  name: string;
  inputSchema: { properties: Record<string, unknown>; required?: string[] };
}
const tools: ContractTool[] = missing ? [] : JSON.parse(readFileSync(CONTRACT, 'utf8')).tools;

type Call = (name: string, args: Record<string, unknown>) => Promise<CallToolResult>;

let backend: ProcessDatabase;
let runtime: Runtime;
let adminToken = '';
let stdio: ServerProcess;
let http: Client;
let n = 0;

before(async () => {
  if (missing) return;
  backend = await stdioBackend('remote');
  await backend.use(async (rt) => {
    runtime = rt;
    adminToken = recordSecret((await makeToken(rt, await makeUser(rt, { roles: ['admin'] }))).raw);
  });
  stdio = await startServer(['servers/admin.ts'], backend.env, adminToken);
  http = new Client({ name: 'contract', version: '1' });
  await http.connect(new StreamableHTTPClientTransport(new URL(`${backend.env.MANDATE_URL}/mcp/admin`), { requestInit: { headers: { authorization: `Bearer ${adminToken}` } } }));
});
after(async () => {
  if (missing) return;
  await stdio.close();
  await http.close();
  await backend.dispose();
});

/** Fresh things for one call to act on, named as the contract names them. */
async function fixtures() {
  const i = n++;
  const user = await makeUser(runtime, { email: `contract-${i}-${Date.now()}@example.test` });
  const project = await makeProject(runtime, `CT${i}X${Date.now() % 100000}`);
  const em = runtime.db.orm.em.fork();
  const [role] = await em.execute<{ id: string }[]>("select id from role where name = 'viewer'");
  const [assignment] = await em.execute<{ id: string }[]>(
    "insert into role_assignment (id, user_id, role_id, project_id, created_at) values (gen_random_uuid(), ?, (select id from role where name = 'developer'), null, now()) returning id",
    [user.id],
  );
  const [delegation] = await em.execute<{ id: string }[]>(
    "insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at) values (gen_random_uuid(), (select ra.user_id from role_assignment ra join role r on r.id = ra.role_id where r.name = 'admin' limit 1), ?, 'pm:read', '', now()) returning id",
    [user.id],
  );
  return { i, user, project, roleId: role!.id, assignmentId: assignment!.id, delegationId: delegation!.id };
}

/** Every argument of the contract, with values for the fixtures; `required` keeps only the required ones. */
async function argumentsFor(tool: ContractTool, requiredOnly: boolean): Promise<Record<string, unknown>> {
  const f = await fixtures();
  const all: Record<string, unknown> = {
    limit: 10,
    offset: 0,
    search: 'contract',
    user_id: f.user.id,
    name: tool.name === 'create_role' ? `contract-role-${f.i}-${Date.now() % 100000}` : tool.name === 'create_token_for_user' ? 'contract token' : `contract-user-${f.i}-${Date.now() % 100000}`,
    email: `new-${f.i}-${Date.now()}@example.test`,
    password: recordSecret(`contract password ${f.i}`),
    display_name: `Contract ${f.i}`,
    user_type: 'service',
    description: 'made by the contract test',
    permissions: ['pm:read', 'users:read'],
    role_id: f.roleId,
    project_id: f.project.id,
    role_assignment_id: f.assignmentId,
    delegate_id: f.user.id,
    permission: 'users:read',
    expires_at: new Date(Date.now() + 86_400_000).toISOString(),
    reason: 'contract',
    delegation_id: f.delegationId,
    scopes: ['pm:read'],
    expires_days: 30,
  };
  const keep = requiredOnly ? new Set(tool.inputSchema.required ?? []) : new Set(Object.keys(tool.inputSchema.properties));
  const args = Object.fromEntries(Object.entries(all).filter(([key]) => keep.has(key)));
  const validate = new Ajv({ strict: false }).compile(tool.inputSchema);
  assert.ok(validate(args), `${tool.name}: the test's own call must match the contract: ${JSON.stringify(validate.errors)}`);
  return args;
}

/** What each tool's description promises, checked on its result. */
function checkResult(name: string, args: Record<string, unknown>, value: Record<string, any>) {
  switch (name) {
    case 'list_users':
    case 'list_roles':
    case 'list_delegations':
      assert.ok(Array.isArray(value.items), name);
      if (args.limit !== undefined) assert.ok(value.items.length <= (args.limit as number));
      if (args.offset !== undefined) assert.ok('next_offset' in value, `${name} pages by offset`);
      break;
    case 'get_user':
    case 'update_user':
    case 'deactivate_user':
      assert.equal(value.id, args.user_id);
      if (name === 'deactivate_user') assert.equal(value.active, false);
      if (name === 'update_user' && args.display_name) assert.equal(value.display_name, args.display_name);
      break;
    case 'create_user':
      assert.equal(value.email, args.email);
      assert.equal(value.type, args.user_type ?? 'human');
      break;
    case 'create_role':
      assert.deepEqual([...value.permissions].sort(), [...(args.permissions as string[])].sort());
      break;
    case 'assign_role':
      assert.equal(value.role, 'viewer');
      assert.equal(value.project_key !== null, args.project_id !== undefined);
      break;
    case 'remove_role':
      assert.equal(value.id, args.role_assignment_id);
      assert.equal(value.removed, true);
      break;
    case 'list_permissions':
      assert.ok(value.items.some((p: { permission: string }) => p.permission === 'users:read'));
      break;
    case 'create_delegation':
      assert.equal(value.delegate_id, args.delegate_id);
      assert.equal(value.permission, args.permission);
      break;
    case 'revoke_delegation':
      assert.equal(value.id, args.delegation_id);
      assert.ok(value.revoked_at);
      break;
    case 'create_token_for_user': {
      assert.match(recordSecret(value.token), /^mnd_/);
      const days = (new Date(value.expires_at).getTime() - Date.now()) / 86_400_000;
      assert.ok(Math.abs(days - ((args.expires_days as number | undefined) ?? 90)) < 1, `expires in ${days} days`);
      break;
    }
    default:
      assert.fail(`no result check for ${name}`);
  }
}

describe('the admin agents\' contract', { skip: missing }, () => {
  test('it names the 14 tools the admin server serves', async () => {
    assert.equal(tools.length, 14);
    const served = (await stdio.toolNames());
    for (const tool of tools) assert.ok(served.includes(tool.name), `${tool.name} is served`);
  });

  for (const face of ['stdio', 'http'] as const) {
    for (const requiredOnly of [false, true]) {
      test(`every tool accepts the contract's calls (${requiredOnly ? 'required arguments only' : 'every argument'}) over ${face}`, async () => {
        const call: Call = face === 'stdio' ? (name, args) => stdio.call(name, args) : async (name, args) => (await http.callTool({ name, arguments: args })) as CallToolResult;
        for (const tool of tools) {
          const args = await argumentsFor(tool, requiredOnly);
          const result = await call(tool.name, args);
          const text = JSON.stringify(result.structuredContent);
          if (tool.name !== 'create_token_for_user') keepArtifact('http-response', text);
          assert.ok(!result.isError, `${tool.name} ${JSON.stringify(args)} was refused: ${text}`);
          checkResult(tool.name, args, result.structuredContent as Record<string, any>);
        }
      });
    }
  }
});
