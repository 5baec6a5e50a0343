import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { z } from 'zod';
import { ALL_OPERATIONS, OPERATIONS, operationsOf, registry } from '../lib/ops/index.ts';
import { isReadEffect, operation, SERVER_NAMES, type AnyOperation } from '../lib/ops/operation.ts';
import { inputJsonSchema, outputJsonSchema } from '../lib/ops/json-schema.ts';
import { SERVERS } from '../lib/mcp/servers.ts';
import { PM_TOOLSETS } from '../lib/pm/settings.ts';
import { User } from '../lib/db/entities/index.ts';
import { staleToolsnaps, toolsnapFiles } from '../scripts/docs.ts';
import { callerOf, delegate, makeProject, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { specsMissing } from './helpers/openapi.ts';

// The registry's own rules, checked on the list itself: one name each, snake_case everywhere,
// servers and toolsets declared by each operation, schemas that are objects, a committed snapshot
// of every tool's interface, and every read really reading only (run under READ ONLY).

process.env.MANDATE_VERIFY_OPERATIONS = '1';

const SNAKE = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;

/** Every property name a JSON Schema declares, with its path. */
function propertyNames(schema: unknown, path = ''): string[] {
  if (!schema || typeof schema !== 'object') return [];
  const node = schema as Record<string, unknown>;
  const names: string[] = [];
  if (node.properties && typeof node.properties === 'object') {
    for (const [key, child] of Object.entries(node.properties as Record<string, unknown>)) {
      names.push(`${path}${key}`);
      names.push(...propertyNames(child, `${path}${key}.`));
    }
  }
  for (const key of ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties']) {
    const child = node[key];
    for (const each of Array.isArray(child) ? child : [child]) names.push(...propertyNames(each, path));
  }
  return names;
}

describe('the registry', () => {
  test('every operation has one name; a second operation of the same name, or an unknown server, stops the load', () => {
    const names = ALL_OPERATIONS.map((op) => op.name);
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.length >= 80, `only ${names.length} operations registered`);
    for (const name of names) assert.match(name, SNAKE, `${name} is not a snake_case tool name`);
    const twin = { ...OPERATIONS.whoami! };
    assert.throws(() => registry([OPERATIONS.whoami!, twin]), /two operations are named whoami/);
    assert.throws(() => registry([{ ...twin, servers: ['root'] } as unknown as AnyOperation]), /unknown server "root"/);
    assert.equal(OPERATIONS.__proto__, undefined);
    assert.equal(OPERATIONS.constructor, undefined);
  });

  test('an operation defined but not exported (so no tool and no route) stops the load', () => {
    const here = (path: string) => new URL(path, import.meta.url).href;
    const script = [
      `import { z } from 'zod';`,
      `import { operation } from '${here('../lib/ops/operation.ts')}';`,
      `operation({ name: 'orphan_op', servers: ['admin'], route: { method: 'GET', path: '/api/orphan' }, title: 'orphan', description: 'defined, never exported',`,
      `  input: z.strictObject({}), output: z.strictObject({}), permission: null, effect: 'read', annotations: {}, run: async () => ({}) });`,
      `await import('${here('../lib/ops/index.ts')}');`,
    ].join('\n');
    const child = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', '--input-type=module', '-e', script], { cwd: new URL('..', import.meta.url), encoding: 'utf8' });
    assert.notEqual(child.status, 0);
    assert.match(child.stderr, /operation orphan_op is defined but not in the registry/);
  });

  test('every argument and every result field, at every depth, is snake_case', () => {
    const offenders: string[] = [];
    for (const op of ALL_OPERATIONS) {
      for (const name of propertyNames(inputJsonSchema(op))) if (!SNAKE.test(name.split('.').at(-1)!)) offenders.push(`${op.name} input ${name}`);
      for (const name of propertyNames(outputJsonSchema(op))) if (!SNAKE.test(name.split('.').at(-1)!)) offenders.push(`${op.name} output ${name}`);
    }
    assert.deepEqual(offenders, []);
  });

  test('one flag style: booleans that widen a list are include_*, never *_only', () => {
    const flags = ALL_OPERATIONS.flatMap((op) => propertyNames(inputJsonSchema(op)).filter((name) => /_only$|^only_/.test(name)).map((name) => `${op.name}.${name}`));
    assert.deepEqual(flags, []);
  });

  test('each operation declares its servers (and a PM tool its toolset); the servers are derived from that', () => {
    for (const op of ALL_OPERATIONS) {
      for (const server of op.servers) assert.ok((SERVER_NAMES as readonly string[]).includes(server), `${op.name}: ${server}`);
      if (op.toolset !== undefined) assert.ok((PM_TOOLSETS as readonly string[]).includes(op.toolset), `${op.name}: toolset ${op.toolset}`);
      if (op.servers.includes('pm') && op.name !== 'list_pm_connections') assert.ok(op.toolset, `${op.name} is a PM tool without a toolset`);
    }
    for (const name of SERVER_NAMES) {
      assert.deepEqual(SERVERS[name]!.operations.map((op) => op.name), operationsOf(name).map((op) => op.name));
      assert.ok(SERVERS[name]!.operations.length > 0);
    }
    const restOnly = ALL_OPERATIONS.filter((op) => op.servers.length === 0).map((op) => op.name);
    // A browser step, and the gateway's two: the MCP face lists and calls installed servers' tools through them.
    assert.deepEqual(restOnly, ['call_gateway_tool', 'complete_pm_oauth', 'list_gateway_tools'], 'only a browser step and the gateway are routes without a tool');
  });

  test('inputs and outputs are JSON Schema objects; every operation has a description and a route', () => {
    for (const op of ALL_OPERATIONS) {
      assert.equal(inputJsonSchema(op).type, 'object', `${op.name} input`);
      assert.equal(outputJsonSchema(op).type, 'object', `${op.name} output`);
      assert.ok(op.description.length >= 30, `${op.name}: a description a model can use`);
      assert.match(op.route.path, /^\/api\//);
    }
  });

  test('schemas are portable: no empty-schema `additionalProperties: {}` (clients warn or reject), open records say `true`', () => {
    const emptyExtras = (node: unknown, path: string): string[] => {
      if (!node || typeof node !== 'object') return [];
      const found: string[] = [];
      for (const [key, child] of Object.entries(node as Record<string, unknown>)) {
        if (key === 'additionalProperties' && child && typeof child === 'object' && Object.keys(child).length === 0) found.push(path);
        found.push(...emptyExtras(child, `${path}.${key}`));
      }
      return found;
    };
    const offenders = ALL_OPERATIONS.flatMap((op) => [...emptyExtras(inputJsonSchema(op), `${op.name}.input`), ...emptyExtras(outputJsonSchema(op), `${op.name}.output`)]);
    assert.deepEqual(offenders, []);
    const getIssue = ALL_OPERATIONS.find((op) => op.name === 'get_issue')!;
    const fields = (outputJsonSchema(getIssue) as { properties: Record<string, { additionalProperties?: unknown }> }).properties.fields;
    assert.equal(fields?.additionalProperties, true, 'an open record is still published as open');
  });

  test('the committed tool snapshots are the registry (an interface change shows in review: npm run docs)', () => {
    assert.deepEqual(staleToolsnaps(), [], 'these test/toolsnaps/ files differ from the registry; run npm run docs and review the diff');
    const snap = JSON.parse(toolsnapFiles()['assign_role.json']!);
    assert.deepEqual(Object.keys(snap.input.properties).sort(), ['project_id', 'project_key', 'role', 'role_id', 'user_id']);
    assert.equal(snap.route, 'POST /api/admin/users/{user_id}/roles');
  });
});

describe('every read succeeds as declared: reads of Mandate\'s data under a READ ONLY transaction, all against their output schemas', () => {
  const missing = specsMissing();
  let rt: TestRuntime;
  let jira: FakeJira;
  let attachmentId = '';
  let admin: User;
  const ids: Record<string, string> = {};
  const jiraUser: FakeUser = { accountId: '5b10a2844c20165700ede2aa', name: 'reader', displayName: 'Reader', emailAddress: 'reader@corp.test', secret: recordSecret(`registry-jira-${Date.now()}`), projects: ['ALPHA'] };

  before(async () => {
    jira = await new FakeJira('cloud', [jiraUser]).start();
    jira.addIssue('ALPHA', { summary: 'read me' });
    attachmentId = jira.addAttachment('ALPHA-1', 'notes.txt', 'text/plain', Buffer.from('read me too'), jiraUser).id;
    jira.sprints.set(7, { id: 7, name: 'Sprint 7', state: 'active', board: 1, issues: [] });
    rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
    await makeProject(rt, 'ALPHA');
    admin = await makeUser(rt, { roles: ['admin'] });
    const other = await makeUser(rt, { roles: ['developer'] });
    ids.user = other.id;
    ids.delegation = (await delegate(rt, admin, other, 'pm:read')).id;
    await makeToken(rt, other);
    const run = async (name: string, input: Record<string, unknown>) => {
      const result = await rt.runner.run(OPERATIONS[name]!, callerOf(admin), input);
      assert.ok(result.ok, `${name}: ${!result.ok && result.error.message}`);
      return result.value as Record<string, any>;
    };
    ids.catalog = (await run('create_mcp_catalog_entry', { name: 'reader-server', transport: 'remote', url: 'https://mcp.example.test/r' })).id;
    ids.install = (await run('install_mcp_server', { catalog_id: 'reader-server' })).id;
    await run('add_pm_connection', { provider: 'jira_cloud', base_url: jira.url, email: jiraUser.emailAddress, api_token: jiraUser.secret });
  });
  after(async () => {
    await rt?.close();
    await jira?.stop();
  });

  const INPUTS: Record<string, () => Record<string, unknown>> = {
    get_delegation: () => ({ delegation_id: ids.delegation }),
    get_mcp_catalog_entry: () => ({ id: 'reader-server' }),
    get_mcp_server: () => ({ id: ids.install }),
    get_mandate_project: () => ({ project: 'ALPHA' }),
    list_mandate_projects: () => ({ search: 'ALP' }),
    list_mandate_project_members: () => ({ project: 'ALPHA' }),
    get_my_permissions: () => ({}),
    get_role: () => ({ role: 'developer' }),
    get_user: () => ({ user_id: ids.user }),
    get_user_permissions: () => ({ user_id: ids.user }),
    health: () => ({}),
    list_delegations: () => ({ include_inactive: true }),
    list_mcp_catalog: () => ({}),
    list_mcp_servers: () => ({ all: true }),
    list_mcp_server_tools: () => ({ id: ids.install }),
    list_quarantined_mcp_tools: () => ({ include_rejected: true }),
    // Upstream reads of a server that cannot be reached: a report, and a list naming it unavailable.
    test_mcp_server: () => ({ id: ids.install }),
    list_gateway_tools: () => ({}),
    list_my_agent_sessions: () => ({ include_ended: true }),
    list_my_delegations: () => ({ include_inactive: true }),
    list_my_mcp_servers: () => ({}),
    list_my_tokens: () => ({ include_revoked: true }),
    list_my_oauth_grants: () => ({ include_revoked: true }),
    list_oauth_clients: () => ({}),
    list_user_oauth_grants: () => ({ user_id: ids.user, include_revoked: true }),
    list_permissions: () => ({}),
    list_pm_connections: () => ({}),
    list_role_members: () => ({ role: 'admin' }),
    list_roles: () => ({ offset: 0 }),
    list_user_sessions: () => ({ user_id: ids.user, include_ended: true }),
    list_user_tokens: () => ({ user_id: ids.user, include_revoked: true }),
    list_users: () => ({ offset: 0 }),
    query_audit: () => ({}),
    whoami: () => ({}),
    get_create_fields: () => ({ project: 'ALPHA', issue_type: 'Task' }),
    get_issue: () => ({ key: 'ALPHA-1', include: ['comments', 'transitions', 'links', 'subtasks', 'history'] }),
    get_project: () => ({ project: 'ALPHA' }),
    list_boards: () => ({}),
    list_comments: () => ({ key: 'ALPHA-1' }),
    list_issue_types: () => ({ project: 'ALPHA' }),
    list_link_types: () => ({}),
    list_priorities: () => ({}),
    list_projects: () => ({}),
    list_sprint_issues: () => ({ sprint: '7' }),
    list_sprints: () => ({ board: '1' }),
    list_statuses: () => ({}),
    list_transitions: () => ({ key: 'ALPHA-1' }),
    list_worklogs: () => ({ key: 'ALPHA-1' }),
    list_attachments: () => ({ key: 'ALPHA-1' }),
    get_attachment: () => ({ key: 'ALPHA-1', attachment_id: attachmentId }),
    search_fields: () => ({}),
    search_issues: () => ({ project: 'ALPHA' }),
    search_users: () => ({ query: 'reader' }),
  };

  test('the table below names every read in the registry', () => {
    const reads = ALL_OPERATIONS.filter((op) => isReadEffect(op.effect)).map((op) => op.name).sort();
    assert.deepEqual(Object.keys(INPUTS).sort(), reads);
  });

  for (const [name, input] of Object.entries(INPUTS)) {
    test(`${name} ${OPERATIONS[name]?.effect === 'read' ? 'succeeds under READ ONLY' : 'succeeds'}, and its result matches its output schema`, { skip: OPERATIONS[name]?.effect === 'upstream-read' && (missing ?? false) }, async () => {
      const result = await rt.runner.run(OPERATIONS[name]!, callerOf(admin), input());
      assert.ok(result.ok, `${name}: ${!result.ok && result.error.message}`);
    });
  }

  test('a read that writes is caught: it fails under READ ONLY, and a result with an undeclared field fails its schema', async () => {
    const sneaky = operation({
      name: 'test_sneaky_read',
      servers: [],
      route: { method: 'GET', path: '/api/test/sneaky' },
      title: 'test',
      description: 'a read that writes, which the registry test must catch',
      input: z.strictObject({}),
      output: z.strictObject({ ok: z.boolean() }),
      permission: null,
      effect: 'read',
      annotations: {},
      async run(ctx) {
        ctx.em.create(User, { name: `sneaky-${Date.now()}`, email: `sneaky-${Date.now()}@example.test`, displayName: 'x', type: 'human', active: true });
        await ctx.em.flush();
        return { ok: true };
      },
    });
    const wrote = await rt.runner.run(sneaky, callerOf(admin), {});
    assert.equal(wrote.ok, false);
    assert.equal(!wrote.ok && wrote.error.code, 'internal');
    assert.equal(await rt.db.orm.em.fork().count(User, { name: { $like: 'sneaky-%' } }), 0);
    assert.ok(rt.logs.some((line) => /read-only transaction/.test(line)), 'the log names the cause');

    const drifted = operation({ ...sneaky, name: 'test_drifted_read', async run() { return { ok: true, okay: true }; } });
    const result = await rt.runner.run(drifted, callerOf(admin), {});
    assert.equal(!result.ok && result.error.code, 'internal');
    assert.match(!result.ok ? result.error.message : '', /test_drifted_read does not match its output schema/);
  });
});
