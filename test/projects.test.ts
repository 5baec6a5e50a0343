import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import type { Caller, UserCaller } from '../lib/identity/caller.ts';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { Project, RoleAssignment } from '../lib/db/entities/index.ts';
import { callerOf, makeRole, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mcpSession } from './helpers/mcp.ts';

let rt: TestRuntime;
let admin: UserCaller;
let server: Server;
let base: string;
let adminToken: string;

before(async () => {
  rt = await testRuntime();
  const adminUser = await makeUser(rt, { roles: ['admin'] });
  admin = callerOf(adminUser);
  adminToken = recordSecret((await makeToken(rt, adminUser)).raw);
  server = createHttpServer(rt);
  base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

async function run<T = any>(op: AnyOperation, caller: Caller, input: unknown): Promise<T> {
  const result = await rt.runner.run(op, caller, input);
  if (!result.ok) throw result.error;
  return result.value as T;
}

async function fails(op: AnyOperation, caller: Caller, input: unknown) {
  const result = await rt.runner.run(op, caller, input);
  assert.equal(result.ok, false, `${op.name} should fail`);
  return (result as { error: { code: string; message: string; field?: string } }).error;
}

async function api(method: string, path: string, body?: unknown, token = adminToken) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

const uniqueKey = (prefix: string) => `${prefix}${Date.now().toString(36).toUpperCase()}${Math.floor(Math.random() * 1e4)}`.slice(0, 32);

describe('projects over MCP', () => {
  test('create, get, list, rename, members, delete: the whole lifecycle through the admin server', async () => {
    const session = await mcpSession(rt, admin, ['admin']);
    try {
      const tools = await session.toolNames();
      for (const name of ['create_mandate_project', 'list_mandate_projects', 'get_mandate_project', 'update_mandate_project', 'delete_mandate_project', 'list_mandate_project_members']) {
        assert.ok(tools.includes(name), `${name} is an admin tool`);
      }
      const key = uniqueKey('MCP');
      const created = await session.call('create_mandate_project', { key: key.toLowerCase(), name: 'Apollo' });
      assert.equal(created.isError, undefined, JSON.stringify(created.content));
      const project = created.structuredContent as { id: string; key: string; name: string; used_by: Record<string, number> };
      assert.equal(project.key, key, 'the key is stored upper-case');
      assert.deepEqual(project.used_by, { role_assignments: 0, delegations: 0, installations: 0 });

      const byId = (await session.call('get_mandate_project', { project: project.id })).structuredContent as { key: string };
      assert.equal(byId.key, key);
      const renamed = (await session.call('update_mandate_project', { project: key, name: 'Apollo 2' })).structuredContent as { name: string };
      assert.equal(renamed.name, 'Apollo 2');
      const listed = (await session.call('list_mandate_projects', { search: key })).structuredContent as { items: { key: string; name: string }[] };
      assert.deepEqual(listed.items.map((p) => [p.key, p.name]), [[key, 'Apollo 2']]);

      const member = await makeUser(rt);
      const assigned = await session.call('assign_role', { user_id: member.id, role: 'developer', project_key: key });
      assert.equal(assigned.isError, undefined, JSON.stringify(assigned.content));
      const members = (await session.call('list_mandate_project_members', { project: key })).structuredContent as { items: { user: { id: string }; grants: { via: string; role?: string; permissions?: string[] }[] }[] };
      assert.equal(members.items.length, 1);
      assert.equal(members.items[0]!.user.id, member.id);
      assert.deepEqual(members.items[0]!.grants.map((g) => [g.via, g.role]), [['role', 'developer']]);
      assert.ok(members.items[0]!.grants[0]!.permissions!.includes('pm:write'));

      const refused = await session.call('delete_mandate_project', { project: key });
      assert.equal(refused.isError, true);
      const error = JSON.parse((refused.content[0] as { text: string }).text).error;
      assert.equal(error.code, 'conflict');
      assert.equal(error.field, 'cascade');
      assert.match(error.message, /1 role assignment/);

      const deleted = await session.call('delete_mandate_project', { project: key, cascade: true });
      assert.equal(deleted.isError, undefined, JSON.stringify(deleted.content));
      assert.equal((deleted.structuredContent as { deleted: boolean }).deleted, true);
      const em = rt.db.orm.em.fork();
      assert.equal(await em.count(Project, { key }), 0);
      assert.equal(await em.count(RoleAssignment, { user: member.id }), 0, 'the cascade removed the assignment');
      const gone = await session.call('get_mandate_project', { project: key });
      assert.equal(JSON.parse((gone.content[0] as { text: string }).text).error.code, 'not_found');
    } finally {
      await session.close();
    }
  });
});

describe('projects over REST', () => {
  test('POST, GET, PATCH, members, DELETE 409 then cascade; errors name their field', async () => {
    const key = uniqueKey('REST');
    const created = await api('POST', '/api/admin/projects', { key, name: 'Gemini' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.key, key);
    assert.equal((await api('POST', '/api/admin/projects', { key, name: 'again' })).body.error.field, 'key');
    assert.equal((await api('POST', '/api/admin/projects', { key, name: 'again' })).status, 409);
    const bad = await api('POST', '/api/admin/projects', { key: '1-bad key', name: 'x' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.field, 'key');
    const nul = await api('POST', '/api/admin/projects', { key: uniqueKey('NUL'), name: 'a\u0000b' });
    assert.equal(nul.status, 400);
    assert.equal(nul.body.error.field, 'name');
    const huge = await api('POST', '/api/admin/projects', { key: uniqueKey('HUGE'), name: 'x'.repeat(201) });
    assert.equal(huge.status, 400);
    assert.equal(huge.body.error.field, 'name');

    assert.equal((await api('GET', `/api/admin/projects/${key}`)).body.name, 'Gemini');
    assert.equal((await api('GET', `/api/admin/projects/${created.body.id}`)).body.key, key);
    assert.equal((await api('PATCH', `/api/admin/projects/${key}`, { name: 'Gemini 7' })).body.name, 'Gemini 7');
    const list = await api('GET', `/api/admin/projects?search=${key}`);
    assert.deepEqual(list.body.items.map((p: { key: string }) => p.key), [key]);
    assert.equal((await api('GET', '/api/admin/projects/NOSUCHPROJECT')).status, 404);

    const member = await makeUser(rt);
    assert.equal((await api('POST', `/api/admin/users/${member.id}/roles`, { role: 'viewer', project_key: key })).status, 200);
    const members = await api('GET', `/api/admin/projects/${key}/members`);
    assert.deepEqual(members.body.items.map((m: { user: { id: string } }) => m.user.id), [member.id]);
    const refused = await api('DELETE', `/api/admin/projects/${key}`);
    assert.equal(refused.status, 409);
    assert.equal((await api('GET', `/api/admin/projects/${key}`)).status, 200, 'a refused delete changes nothing');
    const deleted = await api('DELETE', `/api/admin/projects/${key}?cascade=true`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    assert.equal((await api('GET', `/api/admin/projects/${key}`)).status, 404);
  });

  test('paging: limit and next_offset walk every project once, by key', async () => {
    const prefix = uniqueKey('PG').slice(0, 20);
    const keys = [0, 1, 2, 3, 4].map((i) => `${prefix}_${i}`);
    for (const key of keys) assert.equal((await api('POST', '/api/admin/projects', { key, name: key })).status, 200);
    const seen: string[] = [];
    for (let offset: number | null = 0; offset !== null; ) {
      const page = await api('GET', `/api/admin/projects?search=${prefix}&limit=2&offset=${offset}`);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((p: { key: string }) => p.key));
      offset = page.body.next_offset;
    }
    assert.deepEqual(seen, keys);
    // search is a substring, never a pattern: "_" and "%" match themselves only.
    assert.deepEqual((await api('GET', `/api/admin/projects?search=${encodeURIComponent('%')}`)).body.items, []);
    const underscore = await api('GET', `/api/admin/projects?search=${encodeURIComponent(`${prefix.slice(0, -1)}_`)}`);
    assert.deepEqual(underscore.body.items, [], '"_" is not a one-character wildcard');
    // A key is found however it is cased.
    assert.equal((await api('GET', `/api/admin/projects/${keys[0]!.toLowerCase()}`)).body.key, keys[0]);
  });
});

describe('project permissions', () => {
  test('creating, renaming and deleting need projects:write, listing projects:read; the denial names it', async () => {
    const developer = callerOf(await makeUser(rt, { roles: ['developer'] }));
    const auditor = callerOf(await makeUser(rt, { roles: ['auditor'] }));
    const denied = await fails(ops.createMandateProject, developer, { key: uniqueKey('DEV'), name: 'x' });
    assert.equal(denied.code, 'forbidden');
    assert.match(denied.message, /projects:write/);
    assert.match((await fails(ops.listMandateProjects, developer, {})).message, /projects:read/);
    assert.ok(Array.isArray((await run(ops.listMandateProjects, auditor, {})).items), 'an auditor reads projects');
    assert.match((await fails(ops.createMandateProject, auditor, { key: uniqueKey('AUD'), name: 'x' })).message, /projects:write/);
  });

  test('a cascade needs every permission it takes away: projects:write alone cannot strip an admin grant; nothing is deleted', async () => {
    await makeRole(rt, 'project-keeper', ['projects:write', 'projects:read']);
    const keeper = callerOf(await makeUser(rt, { roles: ['project-keeper'] }));
    const key = uniqueKey('KEEP');
    await run(ops.createMandateProject, keeper, { key, name: 'kept' });
    const holder = await makeUser(rt);
    await run(ops.assignRole, admin, { user_id: holder.id, role: 'admin', project_key: key });
    const denied = await fails(ops.deleteMandateProject, keeper, { project: key, cascade: true });
    assert.equal(denied.code, 'forbidden');
    assert.match(denied.message, /users:write/);
    const em = rt.db.orm.em.fork();
    assert.equal(await em.count(Project, { key }), 1);
    assert.equal(await em.count(RoleAssignment, { user: holder.id }), 1);
    // projects:write held only in a project manages no project, not even that one.
    const local = await makeUser(rt);
    await run(ops.assignRole, admin, { user_id: local.id, role: 'project-keeper', project_key: key });
    assert.match((await fails(ops.updateMandateProject, callerOf(local), { project: key, name: 'mine now' })).message, /projects:write/);
    assert.match((await fails(ops.createMandateProject, callerOf(local), { key: uniqueKey('LOCAL'), name: 'x' })).message, /projects:write/);
    // An unused project is the keeper's to delete.
    const spare = uniqueKey('SPARE');
    await run(ops.createMandateProject, keeper, { key: spare, name: 'spare' });
    assert.equal((await run(ops.deleteMandateProject, keeper, { project: spare })).deleted, true);
  });

  test('a project-scoped role is resolved in that project only', async () => {
    const key = uniqueKey('SCOPE');
    const other = uniqueKey('OTHER');
    await run(ops.createMandateProject, admin, { key, name: 'scoped' });
    await run(ops.createMandateProject, admin, { key: other, name: 'other' });
    const user = await makeUser(rt);
    await run(ops.assignRole, admin, { user_id: user.id, role: 'developer', project_key: key });
    const there = await run(ops.getUserPermissions, admin, { user_id: user.id, project_key: key });
    assert.ok(there.permissions.some((p: { permission: string }) => p.permission === 'pm:write'));
    const elsewhere = await run(ops.getUserPermissions, admin, { user_id: user.id, project_key: other });
    assert.deepEqual(elsewhere.permissions, []);
    const globally = await run(ops.getUserPermissions, admin, { user_id: user.id });
    assert.deepEqual(globally.permissions, []);
  });

  test('every project operation is audited with the project it acted on', async () => {
    const key = uniqueKey('AUDIT');
    const created = await run(ops.createMandateProject, admin, { key, name: 'audited' });
    await run(ops.updateMandateProject, admin, { project: key.toLowerCase(), name: 'audited 2' });
    await rt.runner.audit.flush();
    const events = await run(ops.queryAudit, admin, { actor_id: admin.userId, limit: 20 });
    const mine = events.items.filter((e: { operation: string; target: string | null }) => e.operation.endsWith('_mandate_project'));
    assert.ok(mine.some((e: { operation: string; target: string }) => e.operation === 'create_mandate_project' && e.target === `project:${created.id}`));
    assert.ok(mine.some((e: { operation: string; target: string }) => e.operation === 'update_mandate_project' && e.target === `project:${created.id}`), 'named by id, whatever the input named it by');
  });
});
