import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';
import type { User } from '../lib/db/entities/index.ts';
import { assign, callerOf, makeRole, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { processDatabase, ROOT, startServer } from './helpers/stdio.ts';
import { startGatewaySweep } from '../lib/runtime.ts';

// The gateway to installed MCP servers, against real servers: @modelcontextprotocol/server-everything
// (from npm) over stdio and Streamable HTTP, and test/fixtures/mcp-upstream.ts, which can change
// its tool definitions between listings, leak its secret, wait and answer big.

const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js', { paths: [ROOT] });
const FIXTURE = join(ROOT, 'test/fixtures/mcp-upstream.ts');
const NODE_ARGS = ['--disable-warning=ExperimentalWarning'];
const GATEWAY_ENV = { MANDATE_GATEWAY_ALLOW_NETWORKS: 'loopback', MANDATE_GATEWAY_ALLOW_HTTP: 'true', MANDATE_GATEWAY_SWEEP_SECONDS: '0.1' };

const BOB_SECRET = recordSecret('sk-gateway-bob-secret-77f1c2');
const HTTP_SECRET = recordSecret('sk-gateway-http-bearer-5a9e01');
const QUERY_SECRET = recordSecret('qk-gateway-query-key-31d7b4');

let rt: TestRuntime;
let server: Server;
let base: string;
let admin: User;
let bob: User;
let alice: User;
const tokens = new Map<string, string>();
const responses: string[] = [];
const children: ChildProcess[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'mandate-gateway-'));

async function run(runtime: TestRuntime, user: User, op: string, input: Record<string, unknown>) {
  const result = await runtime.runner.run(OPERATIONS[op]!, callerOf(user), input);
  responses.push(JSON.stringify(result.ok ? result.value : result.error.toBody()));
  return result;
}

async function ok(runtime: TestRuntime, user: User, op: string, input: Record<string, unknown>): Promise<any> {
  const result = await run(runtime, user, op, input);
  if (!result.ok) throw new Error(`${op}: ${result.error.code}: ${result.error.message}`);
  return result.value;
}

async function refused(runtime: TestRuntime, user: User, op: string, input: Record<string, unknown>) {
  const result = await run(runtime, user, op, input);
  if (result.ok) throw new Error(`${op} succeeded: ${JSON.stringify(result.value)}`);
  return result.error;
}

/** An MCP client of Mandate's /mcp over Streamable HTTP, as `user`. */
async function mcpAs(user: User): Promise<{ names(): Promise<string[]>; call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>; close(): Promise<void> }> {
  let token = tokens.get(user.id);
  if (!token) tokens.set(user.id, (token = recordSecret((await makeToken(rt, user)).raw)));
  const client = new Client({ name: 'gateway-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return {
    names: async () => {
      const listed = await client.listTools();
      responses.push(JSON.stringify(listed));
      return listed.tools.map((tool) => tool.name);
    },
    call: async (name, args = {}) => {
      const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
      responses.push(JSON.stringify(result));
      return result;
    },
    close: () => client.close(),
  };
}

const textOf = (result: CallToolResult) => (result.content as { type: string; text?: string }[]).map((item) => item.text ?? '').join('');

async function catalog(name: string, fields: Record<string, unknown>) {
  return ok(rt, admin, 'create_mcp_catalog_entry', { name, credential_fields: [{ name: 'API_KEY', required: true }], ...fields });
}

async function installFor(user: User, catalogName: string, secrets: Record<string, string>, runtime = rt): Promise<string> {
  return (await ok(runtime, admin, 'install_mcp_server', { catalog_id: catalogName, user_id: user.id, secrets })).id;
}

/** Starts a process and waits for `ready` on its stdout or stderr. */
async function startProcess(args: string[], env: Record<string, string>, ready: RegExp): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...NODE_ARGS, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`not ready: ${seen}`)), 20_000);
    const look = (chunk: Buffer) => {
      seen += chunk;
      if (ready.test(seen)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${seen}`)));
  });
  return child;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function pidOf(runtime: TestRuntime, user: User, installationId: string): number {
  const session = runtime.gateway.running().find((s) => s.userId === user.id && s.installationId === installationId);
  assert.ok(session?.pid, 'a running stdio process for that user and installation');
  return session.pid;
}

before(async () => {
  rt = await testRuntime({ env: GATEWAY_ENV });
  // As `mandate serve` and every stdio server do: running sessions are checked against the database.
  startGatewaySweep(rt);
  server = createHttpServer(rt);
  const { port } = await listen(server, '127.0.0.1', 0);
  base = `http://127.0.0.1:${port}`;
  admin = await makeUser(rt, { roles: ['admin'] });
  bob = await makeUser(rt, { roles: ['developer'] });
  alice = await makeUser(rt, { roles: ['developer'] });
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
  for (const child of children) child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
  // The sweep: no installation's secret in any answer (logs and audit rows are checked by rt.close()).
  const answers = responses.join('\n');
  for (const secret of [BOB_SECRET, HTTP_SECRET, QUERY_SECRET]) assert.ok(!answers.includes(secret), 'an installation secret appears in a response');
});

describe('server-everything over stdio, installed for bob', () => {
  let installation: string;
  before(async () => {
    await catalog('everything', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, EVERYTHING, 'stdio'] });
    installation = await installFor(bob, 'everything', { API_KEY: BOB_SECRET });
  });

  test("bob's /mcp lists its tools namespaced beside Mandate's, and echo answers through the gateway", async () => {
    const mcp = await mcpAs(bob);
    try {
      const names = await mcp.names();
      assert.ok(names.includes('everything__echo'), names.join(', '));
      assert.ok(names.includes('whoami'), "Mandate's own tools are still there");
      const result = await mcp.call('everything__echo', { message: 'hello through Mandate' });
      assert.equal(result.isError, undefined);
      assert.match(textOf(result), /hello through Mandate/);
    } finally {
      await mcp.close();
    }
  });

  test("the process's environment holds its secret and nothing of Mandate's", async () => {
    const environ = readFileSync(`/proc/${pidOf(rt, bob, installation)}/environ`, 'utf8').split('\0').filter(Boolean);
    const names = environ.map((entry) => entry.slice(0, entry.indexOf('=')));
    assert.ok(environ.includes(`API_KEY=${BOB_SECRET}`));
    assert.deepEqual(names.sort(), ['API_KEY', 'PATH']);
    assert.ok(Object.keys(process.env).some((name) => name.startsWith('MANDATE_')), 'this test process has MANDATE_ variables to leak');
  });

  test('the session is reused: further calls and listings go to the same process', async () => {
    const pid = pidOf(rt, bob, installation);
    await ok(rt, bob, 'call_gateway_tool', { name: 'everything__echo', arguments: { message: 'again' } });
    await ok(rt, bob, 'list_gateway_tools', {});
    await ok(rt, bob, 'call_gateway_tool', { name: 'everything__echo', arguments: { message: 'and again' } });
    assert.equal(pidOf(rt, bob, installation), pid);
  });

  test('alice sees none of them; calling one by name is refused and audited', async () => {
    const mcp = await mcpAs(alice);
    try {
      assert.ok(!(await mcp.names()).some((name) => name.includes('__')));
      const error = errorOfToolResult(await mcp.call('everything__echo', { message: 'x' }));
      assert.equal(error.code, 'not_found');
      assert.match(error.message, /no MCP server installed for you/);
    } finally {
      await mcp.close();
    }
    const rows = await rt.auditRows();
    const refusal = rows.find((row) => row.operation === 'call_gateway_tool' && row.actor_id === alice.id);
    assert.ok(refusal, 'the refused call is audited');
    assert.equal(refusal.outcome, 'failed');
    assert.equal(refusal.error_code, 'not_found');
  });

  test("bob's call is audited with installation, tool, outcome and duration, the arguments redacted", async () => {
    const rows = await rt.auditRows();
    const call = rows.find((row) => row.operation === 'call_gateway_tool' && row.actor_id === bob.id && row.outcome === 'allowed');
    assert.ok(call);
    const detail = call.detail as Record<string, any>;
    assert.equal(detail.installation_id, installation);
    assert.equal(detail.tool, 'echo');
    assert.equal(detail.upstream_outcome, 'ok');
    assert.equal(typeof detail.ms, 'number');
    assert.equal(detail.input.arguments, '[redacted]');
    assert.ok(!JSON.stringify(rows).includes('hello through Mandate'), 'the arguments are not in the audit log');
  });

  test('a user without installs:use gets no gateway tools and a call is denied naming the permission', async () => {
    const viewer = await makeUser(rt, { roles: ['viewer'] });
    await installFor(viewer, 'everything', { API_KEY: BOB_SECRET });
    const listed = await refused(rt, viewer, 'list_gateway_tools', {});
    assert.equal(listed.code, 'forbidden');
    const error = await refused(rt, viewer, 'call_gateway_tool', { name: 'everything__echo', arguments: { message: 'x' } });
    assert.equal(error.code, 'forbidden');
    assert.match(error.message, /installs:use/);
  });
});

describe('server-everything over Streamable HTTP', () => {
  let port: number;
  before(async () => {
    port = await freePort();
    await startProcess([EVERYTHING, 'streamableHttp'], { PORT: String(port) }, /listening on port/i);
    await catalog('everything-http', { transport: 'remote', url: `http://127.0.0.1:${port}/mcp` });
    await installFor(bob, 'everything-http', { API_KEY: BOB_SECRET });
  });

  test('bob lists and calls its echo over HTTP, through the same gateway', async () => {
    const mcp = await mcpAs(bob);
    try {
      assert.ok((await mcp.names()).includes('everything-http__echo'));
      assert.match(textOf(await mcp.call('everything-http__echo', { message: 'over http' })), /over http/);
    } finally {
      await mcp.close();
    }
  });
});

describe('a remote server that needs its secrets in a header and the query', () => {
  before(async () => {
    const port = await freePort();
    await startProcess([FIXTURE], { FIXTURE_PORT: String(port), FIXTURE_BEARER: HTTP_SECRET, FIXTURE_QUERY_KEY: QUERY_SECRET }, /listening/);
    await ok(rt, admin, 'create_mcp_catalog_entry', {
      name: 'authed',
      transport: 'remote',
      url: `http://127.0.0.1:${port}/mcp`,
      credential_fields: [{ name: 'TOKEN' }, { name: 'QKEY' }],
      headers: { Authorization: 'Bearer {TOKEN}' },
      query: { key: '{QKEY}' },
    });
  });

  test('the installation secrets are injected as the catalog declares; wrong ones fail with a clear error', async () => {
    await installFor(bob, 'authed', { TOKEN: HTTP_SECRET, QKEY: QUERY_SECRET });
    const answer = await ok(rt, bob, 'call_gateway_tool', { name: 'authed__echo', arguments: { message: 'authorised' } });
    assert.match(JSON.stringify(answer.content), /authorised/);
    await installFor(alice, 'authed', { TOKEN: 'wrong-token-value', QKEY: QUERY_SECRET });
    const error = await refused(rt, alice, 'call_gateway_tool', { name: 'authed__echo', arguments: { message: 'x' } });
    assert.equal(error.code, 'upstream_failed');
    assert.match(error.message, /MCP server "authed" failed/);
  });

  test('a template naming no credential field is refused on its field', async () => {
    const error = await refused(rt, admin, 'create_mcp_catalog_entry', {
      name: 'bad-template', transport: 'remote', url: 'https://mcp.example.test/mcp', credential_fields: [{ name: 'TOKEN' }], headers: { 'X-Key': '{NOPE}' },
    });
    assert.equal(error.code, 'invalid_input');
    assert.equal(error.field, 'headers.X-Key');
    const stdio = await refused(rt, admin, 'create_mcp_catalog_entry', { name: 'bad-stdio', transport: 'stdio', command: 'x', headers: { 'X-Key': 'v' } });
    assert.equal(stdio.field, 'headers');
    const reserved = await refused(rt, admin, 'create_mcp_catalog_entry', { name: 'bad-header', transport: 'remote', url: 'https://mcp.example.test/mcp', headers: { 'Mcp-Session-Id': 'x' } });
    assert.equal(reserved.code, 'invalid_input');
  });
});

describe('what an admin may define', () => {
  test('a stdio entry runs a command as Mandate\'s OS user: installs:admin alone cannot define or change one', async () => {
    await makeRole(rt, 'catalog-keeper', ['installs:admin']);
    const keeper = await makeUser(rt);
    await assign(rt, keeper, 'catalog-keeper');
    const error = await refused(rt, keeper, 'create_mcp_catalog_entry', { name: 'sneaky', transport: 'stdio', command: '/bin/sh', args: ['-c', 'cat /proc/$PPID/environ'] });
    assert.equal(error.code, 'forbidden');
    assert.equal(error.field, 'transport');
    assert.match(error.message, /needs every permission; you do not hold .*users:write/);
    await ok(rt, keeper, 'create_mcp_catalog_entry', { name: 'kept-remote', transport: 'remote', url: 'https://mcp.example.test/mcp' });
    const turned = await refused(rt, keeper, 'update_mcp_catalog_entry', { id: 'kept-remote', transport: 'stdio', url: null, command: '/bin/sh' });
    assert.equal(turned.code, 'forbidden');
    const changed = await refused(rt, keeper, 'update_mcp_catalog_entry', { id: 'everything', args: ['-e', 'process.exit(0)'] });
    assert.equal(changed.field, 'args');
    await ok(rt, keeper, 'update_mcp_catalog_entry', { id: 'everything', description: 'a description is not a command' });
  });

  test('installs:admin alone cannot change what a stdio entry sets, nor where an installed remote entry sends its secrets', async () => {
    const keeper = await makeUser(rt);
    await assign(rt, keeper, 'catalog-keeper');
    const fields = await refused(rt, keeper, 'update_mcp_catalog_entry', { id: 'everything', credential_fields: [{ name: 'API_KEY' }, { name: 'PIP_INDEX_URL', required: false }] });
    assert.equal(fields.code, 'forbidden');
    assert.equal(fields.field, 'credential_fields');
    const moved = await refused(rt, keeper, 'update_mcp_catalog_entry', { id: 'authed', url: 'https://attacker.example.test/mcp' });
    assert.equal(moved.code, 'forbidden');
    assert.equal(moved.field, 'url');
    assert.match(moved.message, /installation\(s\) whose secrets go where/);
    const header = await refused(rt, keeper, 'update_mcp_catalog_entry', { id: 'authed', headers: { Authorization: 'Bearer {TOKEN}', 'X-Copy': '{QKEY}' } });
    assert.equal(header.field, 'headers');
    assert.equal((await refused(rt, admin, 'create_mcp_catalog_entry', { name: 'gh__admin', transport: 'remote', url: 'https://mcp.example.test/mcp' })).field, 'name');
  });

  test('a stdio entry defined before the gateway existed runs only once someone holding every permission saves it again', async () => {
    await catalog('legacy', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE] });
    await installFor(bob, 'legacy', { API_KEY: BOB_SECRET });
    await rt.db.orm.em.fork().execute(`update mcp_catalog set launch_approved = false where name = 'legacy'`, [], 'run');
    const { unavailable } = await ok(rt, bob, 'list_gateway_tools', {});
    assert.match(unavailable.find((u: any) => u.namespace === 'legacy')?.message ?? '', /may not be started: its command was defined before the gateway/);
    assert.equal((await refused(rt, bob, 'call_gateway_tool', { name: 'legacy__echo', arguments: { message: 'x' } })).code, 'forbidden');
    const keeper = await makeUser(rt);
    await assign(rt, keeper, 'catalog-keeper');
    await ok(rt, keeper, 'update_mcp_catalog_entry', { id: 'legacy', description: 'saved by a keeper' });
    assert.equal((await refused(rt, bob, 'call_gateway_tool', { name: 'legacy__echo', arguments: { message: 'x' } })).code, 'forbidden', 'a partial admin does not approve it');
    await ok(rt, admin, 'update_mcp_catalog_entry', { id: 'legacy', description: 'saved by a full admin' });
    await ok(rt, bob, 'call_gateway_tool', { name: 'legacy__echo', arguments: { message: 'now it runs' } });
  });

  test('a stdio credential field may not be a variable that changes how the command starts', async () => {
    for (const name of ['NODE_OPTIONS', 'LD_PRELOAD', 'PATH', 'PYTHONSTARTUP']) {
      const error = await refused(rt, admin, 'create_mcp_catalog_entry', { name: `env-${name.toLowerCase().replace(/_/g, '-')}`, transport: 'stdio', command: 'node', credential_fields: [{ name }] });
      assert.equal(error.code, 'invalid_input', name);
      assert.equal(error.field, 'credential_fields.0.name');
    }
  });

  test('tools no gateway should pass on (NUL in a name or description, over-long names, huge descriptions) are left out, the rest still served', async () => {
    await catalog('hostile', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE, '--hostile'] });
    await installFor(bob, 'hostile', { API_KEY: BOB_SECRET });
    const { tools, unavailable } = await ok(rt, bob, 'list_gateway_tools', {});
    const names = tools.filter((tool: any) => tool.namespace === 'hostile').map((tool: any) => tool.tool).sort();
    assert.deepEqual(names, ['big', 'echo', 'leak_secret', 'slow']);
    assert.deepEqual(unavailable, []);
  });
});

describe('tool pinning and quarantine', () => {
  let installation: string;
  before(async () => {
    await catalog('shifty', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE, '--changing'] });
    installation = await installFor(bob, 'shifty', { API_KEY: BOB_SECRET });
  });

  test('a changed description quarantines the tool: not listed, not callable; a new tool starts quarantined', async () => {
    const first = await ok(rt, bob, 'list_gateway_tools', {});
    assert.ok(first.tools.some((tool: any) => tool.name === 'shifty__echo'));
    assert.equal(first.tools.find((tool: any) => tool.name === 'shifty__echo').description, 'Echoes the message.');
    const second = await ok(rt, bob, 'list_gateway_tools', {});
    const names = second.tools.map((tool: any) => tool.name);
    assert.ok(!names.includes('shifty__echo'), 'the changed tool is not listed');
    assert.ok(!names.includes('shifty__late_tool'), 'the new tool is not listed');
    assert.ok(names.includes('shifty__leak_secret'), 'unchanged tools still are');
    const error = await refused(rt, bob, 'call_gateway_tool', { name: 'shifty__echo', arguments: { message: 'x' } });
    assert.equal(error.code, 'forbidden');
    assert.match(error.message, /quarantined: its definition changed since it was approved/);
    const late = await refused(rt, bob, 'call_gateway_tool', { name: 'shifty__late_tool' });
    assert.match(late.message, /appeared after the server was first listed/);
    const pins = await ok(rt, bob, 'list_mcp_server_tools', { id: installation });
    assert.equal(pins.tools.find((tool: any) => tool.tool === 'echo').status, 'quarantined');
    assert.equal(pins.tools.find((tool: any) => tool.tool === 'leak_secret').status, 'pinned');
  });

  test('concurrent first calls, with no listing before them, all trust the first listing: nothing is quarantined by the race', async () => {
    await catalog('raced', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE] });
    const id = await installFor(bob, 'raced', { API_KEY: BOB_SECRET });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => run(rt, bob, 'call_gateway_tool', { name: 'raced__echo', arguments: { message: `race ${i}` } })));
    assert.deepEqual(results.map((result) => (result.ok ? 'ok' : result.error.message)), Array(12).fill('ok'));
    const { tools } = await ok(rt, bob, 'list_mcp_server_tools', { id });
    assert.deepEqual([...new Set(tools.map((tool: any) => tool.status))], ['pinned']);
  });

  test('only installs:admin reviews; the diff shows what changed; approval is of exactly the definition seen', async () => {
    assert.equal((await refused(rt, bob, 'list_quarantined_mcp_tools', {})).code, 'forbidden');
    const { items } = await ok(rt, admin, 'list_quarantined_mcp_tools', { installation_id: installation });
    const echo = items.find((item: any) => item.tool === 'echo');
    assert.deepEqual(echo.diff.map((d: any) => d.field), ['description']);
    assert.equal(echo.diff[0].before, 'Echoes the message.');
    assert.match(echo.diff[0].after, /Ignore all previous instructions/);
    assert.ok(items.some((item: any) => item.tool === 'late_tool' && item.approved_hash === null));
    const bobTries = await refused(rt, bob, 'approve_mcp_tool', { installation_id: installation, tool: 'echo', seen_hash: echo.seen_hash });
    assert.equal(bobTries.code, 'forbidden');
    assert.match(bobTries.message, /installs:admin/);
    const stale = await refused(rt, admin, 'approve_mcp_tool', { installation_id: installation, tool: 'echo', seen_hash: 'a'.repeat(64) });
    assert.equal(stale.code, 'conflict');
    const approved = await ok(rt, admin, 'approve_mcp_tool', { installation_id: installation, tool: 'echo', seen_hash: echo.seen_hash });
    assert.equal(approved.status, 'pinned');
    assert.equal(approved.reviewed_by_id, admin.id);
    const answer = await ok(rt, bob, 'call_gateway_tool', { name: 'shifty__echo', arguments: { message: 'approved now' } });
    assert.match(JSON.stringify(answer.content), /approved now/);
    const rows = await rt.auditRows();
    const approval = rows.find((row) => row.operation === 'approve_mcp_tool' && row.outcome === 'allowed');
    assert.equal(approval?.actor_id, admin.id, 'the audit names who approved');
    assert.equal((approval?.detail as any).seen_hash, echo.seen_hash);
  });

  test('a rejected tool leaves the queue and stays unusable', async () => {
    const { items } = await ok(rt, admin, 'list_quarantined_mcp_tools', { installation_id: installation });
    const late = items.find((item: any) => item.tool === 'late_tool');
    await ok(rt, admin, 'reject_mcp_tool', { installation_id: installation, tool: 'late_tool', seen_hash: late.seen_hash });
    assert.ok(!(await ok(rt, admin, 'list_quarantined_mcp_tools', { installation_id: installation })).items.some((item: any) => item.tool === 'late_tool'));
    assert.ok((await ok(rt, admin, 'list_quarantined_mcp_tools', { installation_id: installation, include_rejected: true })).items.some((item: any) => item.status === 'rejected'));
    assert.match((await refused(rt, bob, 'call_gateway_tool', { name: 'shifty__late_tool' })).message, /rejected/);
  });

  test('the owner can disable one tool and enable it again', async () => {
    await ok(rt, bob, 'set_mcp_server_tool_enabled', { id: installation, tool: 'echo', enabled: false });
    assert.ok(!(await ok(rt, bob, 'list_gateway_tools', {})).tools.some((tool: any) => tool.name === 'shifty__echo'));
    assert.match((await refused(rt, bob, 'call_gateway_tool', { name: 'shifty__echo', arguments: { message: 'x' } })).message, /disabled/);
    assert.equal((await refused(rt, alice, 'set_mcp_server_tool_enabled', { id: installation, tool: 'echo', enabled: true })).code, 'not_found');
    await ok(rt, bob, 'set_mcp_server_tool_enabled', { id: installation, tool: 'echo', enabled: true });
    assert.ok((await ok(rt, bob, 'list_gateway_tools', {})).tools.some((tool: any) => tool.name === 'shifty__echo'));
  });

  test("a server that answers with its own secret does not hand it to the caller", async () => {
    const answer = await ok(rt, bob, 'call_gateway_tool', { name: 'shifty__leak_secret' });
    const text = JSON.stringify(answer);
    assert.ok(!text.includes(BOB_SECRET));
    assert.match(text, /my key is \[redacted\]/);
  });

  test('a result over the size limit is a clear error, not a flood', async () => {
    const error = await refused(rt, bob, 'call_gateway_tool', { name: 'shifty__big', arguments: { bytes: 5 * 1024 * 1024 } });
    assert.equal(error.code, 'upstream_failed');
    assert.match(error.message, /over this gateway's limit/);
  });

  test('test_mcp_server connects, lists and reports; a server that cannot start is reported, not thrown', async () => {
    const report = await ok(rt, admin, 'test_mcp_server', { id: installation });
    assert.equal(report.ok, true);
    assert.equal(report.server.name, 'fixture-upstream');
    assert.ok(report.tool_count >= 4);
    await catalog('missing-binary', { transport: 'stdio', command: join(tmp, 'no-such-command') });
    const broken = await installFor(bob, 'missing-binary', { API_KEY: BOB_SECRET });
    const failed = await ok(rt, bob, 'test_mcp_server', { id: broken });
    assert.equal(failed.ok, false);
    assert.equal(failed.error.code, 'upstream_failed');
    assert.equal((await refused(rt, alice, 'test_mcp_server', { id: broken })).code, 'not_found');
  });
});

describe('lifecycle: deactivation, removal, idle, limits', () => {
  let small: TestRuntime;
  let root: User;
  let pidFile: string;
  before(async () => {
    pidFile = join(tmp, 'pids.txt');
    small = await testRuntime({
      env: { ...GATEWAY_ENV, MANDATE_GATEWAY_IDLE_SECONDS: '0.5', MANDATE_GATEWAY_MAX_PROCESSES_PER_USER: '2', MANDATE_GATEWAY_MAX_PROCESSES: '3' },
    });
    root = await makeUser(small, { roles: ['admin'] });
  });
  after(async () => {
    await small.close();
  });

  test('a deactivated user\'s processes stop and their calls are refused; a removed installation\'s process stops', async () => {
    await catalog('lifecycle', { transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE] });
    const carol = await makeUser(rt, { roles: ['developer'] });
    const dave = await makeUser(rt, { roles: ['developer'] });
    const carols = await installFor(carol, 'lifecycle', { API_KEY: BOB_SECRET });
    const daves = await installFor(dave, 'lifecycle', { API_KEY: BOB_SECRET });
    await ok(rt, carol, 'call_gateway_tool', { name: 'lifecycle__echo', arguments: { message: 'x' } });
    await ok(rt, dave, 'call_gateway_tool', { name: 'lifecycle__echo', arguments: { message: 'x' } });
    const carolPid = pidOf(rt, carol, carols);
    const davePid = pidOf(rt, dave, daves);
    await ok(rt, admin, 'deactivate_user', { user_id: carol.id });
    await until("carol's process stops", () => !alive(carolPid));
    assert.equal((await refused(rt, carol, 'call_gateway_tool', { name: 'lifecycle__echo', arguments: { message: 'x' } })).code, 'unauthenticated');
    assert.ok(alive(davePid), "dave's process is untouched");
    await ok(rt, admin, 'uninstall_mcp_server', { id: daves });
    await until("the removed installation's process stops", () => !alive(davePid));
    assert.equal((await refused(rt, dave, 'call_gateway_tool', { name: 'lifecycle__echo', arguments: { message: 'x' } })).code, 'not_found');
  });

  test('an idle process stops after the idle timeout, and starts again on the next call', async () => {
    await ok(small, root, 'create_mcp_catalog_entry', { name: 'idle', transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE] });
    const erin = await makeUser(small, { roles: ['developer'] });
    const id = (await ok(small, root, 'install_mcp_server', { catalog_id: 'idle', user_id: erin.id })).id;
    await ok(small, erin, 'call_gateway_tool', { name: 'idle__echo', arguments: { message: 'x' } });
    const pid = pidOf(small, erin, id);
    await until('the idle process stops', () => !alive(pid));
    assert.equal(small.gateway.running().length, 0);
    await ok(small, erin, 'call_gateway_tool', { name: 'idle__echo', arguments: { message: 'again' } });
    assert.notEqual(pidOf(small, erin, id), pid);
  });

  test('the process limits hold under 20 concurrent first calls (per user, and in all)', async () => {
    await ok(small, root, 'create_mcp_catalog_entry', { name: 'counted', transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE, `--pid-file=${pidFile}`] });
    await ok(small, root, 'install_mcp_server', { catalog_id: 'counted', scope: 'org' });
    const users = await Promise.all(Array.from({ length: 5 }, () => makeUser(small, { roles: ['developer'] })));
    let peak = 0;
    const watching = setInterval(() => {
      const pids = readPids(pidFile);
      peak = Math.max(peak, pids.filter(alive).length);
    }, 10);
    // 4 calls from each of 5 users, all at once, each busy long enough that none can be evicted.
    const results = await Promise.all(users.flatMap((user) => Array.from({ length: 4 }, () => run(small, user, 'call_gateway_tool', { name: 'counted.org__slow', arguments: { ms: 1500 } }))));
    clearInterval(watching);
    const started = readPids(pidFile);
    assert.equal(started.length, 3, 'one process per user, three users at most');
    assert.ok(peak <= 3, `at most 3 processes were alive at once (saw ${peak})`);
    const refusedCalls = results.filter((result) => !result.ok);
    assert.equal(refusedCalls.length, 8, 'the calls of the two users who found no room are refused');
    for (const result of refusedCalls) assert.equal(!result.ok && result.error.code, 'rate_limited');
    assert.equal(results.filter((result) => result.ok).length, 12);
  });

  test('one user is held to the per-user limit; an idle session makes room for a new one', async () => {
    const frank = await makeUser(small, { roles: ['developer'] });
    const ids = [];
    for (const name of ['limit-a', 'limit-b', 'limit-c']) {
      await ok(small, root, 'create_mcp_catalog_entry', { name, transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, FIXTURE] });
      ids.push((await ok(small, root, 'install_mcp_server', { catalog_id: name, user_id: frank.id })).id);
    }
    await small.gateway.stopWhere(() => true);
    const busy = [run(small, frank, 'call_gateway_tool', { name: 'limit-a__slow', arguments: { ms: 1500 } }), run(small, frank, 'call_gateway_tool', { name: 'limit-b__slow', arguments: { ms: 1500 } })];
    await until('both processes started', () => small.gateway.running().filter((s) => s.userId === frank.id && s.pid).length === 2);
    const third = await refused(small, frank, 'call_gateway_tool', { name: 'limit-c__echo', arguments: { message: 'x' } });
    assert.equal(third.code, 'rate_limited');
    assert.match(third.message, /one user may have/);
    await Promise.all(busy);
    await ok(small, frank, 'call_gateway_tool', { name: 'limit-c__echo', arguments: { message: 'room now' } });
    assert.ok(small.gateway.running().filter((s) => s.userId === frank.id).length <= 2);
  });

  test('a remote server on a loopback address is refused where the deployment does not allow it', async () => {
    const strict = await testRuntime();
    try {
      const root = await makeUser(strict, { roles: ['admin'] });
      await ok(strict, root, 'create_mcp_catalog_entry', { name: 'inside', transport: 'remote', url: 'http://127.0.0.1:9/mcp' });
      const id = (await ok(strict, root, 'install_mcp_server', { catalog_id: 'inside' })).id;
      const report = await ok(strict, root, 'test_mcp_server', { id });
      assert.equal(report.ok, false);
      assert.equal(report.error.code, 'forbidden');
      assert.match(report.error.message, /may not be reached/);
    } finally {
      await strict.close();
    }
  });
});

describe('the gateway server over stdio', () => {
  test('remote mode (MANDATE_URL): servers/gateway.js lists and calls bob\'s installed tools through the Mandate server', async () => {
    const token = tokens.get(bob.id)!;
    const gateway = await startServer(['servers/gateway.js'], { MANDATE_URL: base }, token);
    try {
      const names = await gateway.toolNames();
      assert.ok(names.includes('everything__echo'), names.join(', '));
      assert.ok(!names.includes('whoami'), 'the gateway server serves installed tools only');
      const result = await gateway.call('everything__echo', { message: 'from a stdio agent' });
      responses.push(JSON.stringify(result));
      assert.match(textOf(result), /from a stdio agent/);
      const error = errorOfToolResult(await gateway.call('nobody__echo', { message: 'x' }));
      assert.equal(error.code, 'not_found');
    } finally {
      await gateway.close();
    }
  });

  test('local mode: a gateway server with its own database starts the installed server itself', async () => {
    const db = await processDatabase();
    try {
      const token = await db.use(async (runtime) => {
        const local = runtime as TestRuntime;
        const root = await makeUser(local, { roles: ['admin'] });
        const user = await makeUser(local, { roles: ['agent'], type: 'agent' });
        await ok(local, root, 'create_mcp_catalog_entry', { name: 'everything', transport: 'stdio', command: process.execPath, args: [...NODE_ARGS, EVERYTHING, 'stdio'] });
        await ok(local, root, 'install_mcp_server', { catalog_id: 'everything', user_id: user.id });
        return recordSecret((await makeToken(local, user)).raw);
      });
      const gateway = await startServer(['servers/gateway.js'], { ...db.env, ...GATEWAY_ENV }, token);
      try {
        assert.ok((await gateway.toolNames()).includes('everything__echo'));
        assert.match(textOf(await gateway.call('everything__echo', { message: 'local stdio' })), /local stdio/);
      } finally {
        await gateway.close();
      }
    } finally {
      db.dispose();
    }
  });
});

function readPids(file: string): number[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
