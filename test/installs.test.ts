import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { RemoteBackend } from '../lib/mcp/remote.ts';
import { makeProject, makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';

// Installations over both faces (REST and MCP over Streamable HTTP), the same matrix on each.

type Outcome = { ok: true; value: any; status: number } | { ok: false; error: { code: string; message: string; field?: string }; status: number };
interface Face {
  name: string;
  call(token: string, op: string, input: Record<string, unknown>): Promise<Outcome>;
  close(): Promise<void>;
}

let rt: TestRuntime;
let server: Server;
let base: string;
const people: Record<string, { id: string; token: string }> = {};
const SECRET = recordSecret('sk-install-secret-value-0001');
const OTHER_SECRET = recordSecret('sk-install-secret-value-0002');
const responses: string[] = [];

async function person(label: string, roles: (string | [string, string])[]) {
  const user = await makeUser(rt, { email: `${label}-${randomUUID().slice(0, 6)}@example.test`, roles });
  people[label] = { id: user.id, token: recordSecret((await makeToken(rt, user)).raw) };
}

const STATUS: Record<string, number> = { invalid_input: 400, unauthenticated: 401, forbidden: 403, not_found: 404, conflict: 409 };

function restFace(): Face {
  return {
    name: 'REST',
    async call(token, op, input) {
      const operation = OPERATIONS[op]!;
      // The status of a success is only visible on the wire: one raw request for install.
      if (op === 'install_mcp_server') {
        const response = await fetch(`${base}/api/mcp_server`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(input),
        });
        const text = await response.text();
        responses.push(text);
        const body = JSON.parse(text);
        return response.ok ? { ok: true, value: body, status: response.status } : { ok: false, error: body.error, status: response.status };
      }
      const result = await new RemoteBackend(base, token).call(operation, input);
      responses.push(JSON.stringify(result.ok ? result.value : result.error.toBody()));
      return result.ok ? { ok: true, value: result.value, status: 200 } : { ok: false, error: result.error.toBody(), status: result.error.status };
    },
    async close() {},
  };
}

function mcpFace(): Face {
  const clients = new Map<string, Client>();
  return {
    name: 'MCP',
    async call(token, op, input) {
      let client = clients.get(token);
      if (!client) {
        client = new Client({ name: 'installs-test', version: '1.0.0' });
        await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
        clients.set(token, client);
      }
      const result = await client.callTool({ name: op, arguments: input });
      responses.push(JSON.stringify(result));
      if (result.isError) {
        const error = errorOfToolResult(result);
        return { ok: false, error, status: STATUS[error.code] ?? 500 };
      }
      const structured = result.structuredContent as any;
      return { ok: true, value: structured, status: structured.created ? 201 : 200 };
    },
    async close() {
      for (const client of clients.values()) await client.close();
    },
  };
}

async function rowsFor(catalogId: string, userId?: string): Promise<number> {
  const rows = (await rt.db.orm.em.fork().execute(
    `select count(*) as n from mcp_installation where catalog_id = ?${userId ? ' and user_id = ?' : ''}`,
    userId ? [catalogId, userId] : [catalogId],
  )) as { n: string | number }[];
  return Number(rows[0]!.n);
}

before(async () => {
  rt = await testRuntime();
  await makeProject(rt, 'TEAMX');
  await person('admin', ['admin']);
  await person('admin2', ['admin']);
  for (const face of ['REST', 'MCP']) {
    await person(`dev-${face}`, ['developer', ['viewer', 'TEAMX']]);
    await person(`dev2-${face}`, ['developer']);
    await person(`viewer-${face}`, ['viewer']);
    await person(`gone-${face}`, ['developer']);
  }
  await person('auditor', ['auditor']);
  server = createHttpServer(rt);
  base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
});

after(async () => {
  for (const text of responses) keepArtifact('http-response', text);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

for (const makeFace of [restFace, mcpFace]) {
  describe(`installations over ${makeFace.name === 'restFace' ? 'REST' : 'MCP'}`, () => {
    let face: Face;
    let catalogId: string;
    let name: string;
    const p = (label: string) => people[`${label}-${face.name}`]!;

    before(async () => {
      face = makeFace();
      name = `github-${face.name.toLowerCase()}`;
      const entry = await face.call(people.admin!.token, 'create_mcp_catalog_entry', {
        name,
        description: 'GitHub MCP server',
        transport: 'remote',
        url: 'https://mcp.example.test/github',
        credential_fields: [{ name: 'API_KEY', description: 'a GitHub token' }, { name: 'ORG', required: false }],
      });
      assert.ok(entry.ok, JSON.stringify(entry));
      catalogId = entry.value.id;
    });
    after(() => face.close());

    test('self install: a personal installation owned by, and for, the caller; secrets only "set"', async () => {
      const dev = p('dev');
      const result = await face.call(dev.token, 'install_mcp_server', { catalog_id: name, secrets: { API_KEY: SECRET } });
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.status, 201);
      assert.equal(result.value.created, true);
      assert.equal(result.value.owner_id, dev.id);
      assert.deepEqual(result.value.users.map((u: { id: string }) => u.id), [dev.id]);
      assert.equal(result.value.installed_by_id, dev.id);
      assert.deepEqual(result.value.secrets, { API_KEY: 'set', ORG: 'not set' });
      assert.equal(result.value.usable, true);
      assert.ok(!JSON.stringify(result).includes(SECRET));
    });

    test('an admin installs for another user: owner and users are the target, the admin is only the installer', async () => {
      const dev2 = p('dev2');
      const result = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, user_id: dev2.id, secrets: { API_KEY: OTHER_SECRET } });
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.status, 201);
      assert.equal(result.value.owner_id, dev2.id);
      assert.equal(result.value.owner.id, dev2.id);
      assert.deepEqual(result.value.users, [{ id: dev2.id, email: result.value.owner.email, name: result.value.owner.name, display_name: result.value.owner.display_name, active: true }]);
      assert.equal(result.value.installed_by_id, people.admin!.id);
      // The target sees it as theirs.
      const mine = await face.call(dev2.token, 'list_my_mcp_servers', {});
      assert.ok(mine.ok);
      assert.deepEqual(mine.value.items.map((i: { id: string }) => i.id), [result.value.id]);
    });

    test('a non-admin installing for someone else gets 403 naming installs:admin, and nothing is written', async () => {
      const before = await rowsFor(catalogId);
      const result = await face.call(p('dev').token, 'install_mcp_server', { catalog_id: catalogId, user_id: p('viewer').id });
      assert.ok(!result.ok);
      assert.equal(result.status, 403);
      assert.match(result.error.message, /installs:admin/);
      assert.equal(await rowsFor(catalogId), before);
    });

    test('an unknown or deactivated target user is 404 on user_id', async () => {
      const unknown = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, user_id: randomUUID() });
      assert.ok(!unknown.ok);
      assert.deepEqual([unknown.status, unknown.error.field], [404, 'user_id']);
      const gone = p('gone');
      assert.ok((await face.call(people.admin!.token, 'deactivate_user', { user_id: gone.id })).ok);
      const deactivated = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, user_id: gone.id });
      assert.ok(!deactivated.ok);
      assert.deepEqual([deactivated.status, deactivated.error.field], [404, 'user_id']);
      assert.equal(await rowsFor(catalogId, gone.id), 0);
    });

    test('userId with a team scope is 400 on user_id; scope rules on project_key', async () => {
      const team = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, scope: 'team', project_key: 'TEAMX', user_id: p('dev').id });
      assert.ok(!team.ok);
      assert.deepEqual([team.status, team.error.field], [400, 'user_id']);
      const noProject = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, scope: 'project' });
      assert.ok(!noProject.ok);
      assert.deepEqual([noProject.status, noProject.error.field], [400, 'project_key']);
      const unknownSecret = await face.call(p('dev').token, 'install_mcp_server', { catalog_id: catalogId, secrets: { NOPE: 'x' } });
      assert.ok(!unknownSecret.ok);
      assert.deepEqual([unknownSecret.status, unknownSecret.error.field], [400, 'secrets.NOPE']);
    });

    test('a duplicate install returns the existing installation (200), never a second row', async () => {
      const dev2 = p('dev2');
      const first = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, user_id: dev2.id });
      assert.ok(first.ok);
      assert.equal(first.status, 200);
      assert.equal(first.value.created, false);
      assert.equal(first.value.owner_id, dev2.id);
      // The same user installing it for itself is the same installation too.
      const self = await face.call(dev2.token, 'install_mcp_server', { catalog_id: catalogId, secrets: { API_KEY: 'ignored-value-1' } });
      assert.ok(self.ok);
      assert.equal(self.value.id, first.value.id);
      assert.match(self.value.note, /not applied/);
      assert.equal(await rowsFor(catalogId, dev2.id), 1);
    });

    test('two admins installing the same personal server at the same moment make one row', async () => {
      const target = p('viewer');
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => face.call((i % 2 ? people.admin2 : people.admin)!.token, 'install_mcp_server', { catalog_id: catalogId, user_id: target.id })),
      );
      for (const r of results) assert.ok(r.ok, JSON.stringify(r));
      const ids = new Set(results.map((r) => (r as { value: { id: string } }).value.id));
      assert.equal(ids.size, 1);
      assert.equal(results.filter((r) => (r as { value: { created: boolean } }).value.created).length, 1);
      assert.equal(await rowsFor(catalogId, target.id), 1);
    });

    test('team scope: a project\'s members are its users; a developer cannot install for a project', async () => {
      const denied = await face.call(p('dev').token, 'install_mcp_server', { catalog_id: catalogId, scope: 'team', project_key: 'TEAMX' });
      assert.ok(!denied.ok);
      assert.equal(denied.status, 403);
      assert.match(denied.error.message, /installs:admin/);
      const team = await face.call(people.admin!.token, 'install_mcp_server', { catalog_id: catalogId, scope: 'team', project_key: 'TEAMX' });
      assert.ok(team.ok, JSON.stringify(team));
      assert.equal(team.value.project_key, 'TEAMX');
      assert.ok(team.value.users.some((u: { id: string }) => u.id === p('dev').id));
      assert.equal(team.value.owner_id, people.admin!.id);
      const mine = await face.call(p('dev').token, 'list_my_mcp_servers', { scope: 'team' });
      assert.ok(mine.ok);
      assert.ok(mine.value.items.some((i: { id: string }) => i.id === team.value.id));
      // Not a member: not among dev2's, and not visible to dev2 at all.
      const theirs = await face.call(p('dev2').token, 'get_mcp_server', { id: team.value.id });
      assert.ok(!theirs.ok);
      assert.equal(theirs.status, 404);
    });

    test('list, get and uninstall: others\' installations are invisible without installs:read; the owner or an admin uninstalls', async () => {
      const dev = p('dev');
      const dev2 = p('dev2');
      const mine = await face.call(dev.token, 'list_my_mcp_servers', { scope: 'personal' });
      assert.ok(mine.ok);
      const devInstall = mine.value.items.find((i: { catalog_name: string }) => i.catalog_name === name);
      assert.ok(devInstall);
      const all = await face.call(dev.token, 'list_mcp_servers', { all: true });
      assert.ok(!all.ok);
      assert.equal(all.status, 403);
      assert.match(all.error.message, /installs:read/);
      const forUser = await face.call(people.auditor!.token, 'list_mcp_servers', { user_id: dev.id, catalog_id: name, scope: 'personal' });
      assert.ok(forUser.ok);
      assert.deepEqual(forUser.value.items.map((i: { id: string }) => i.id), [devInstall.id]);
      const peek = await face.call(dev2.token, 'get_mcp_server', { id: devInstall.id });
      assert.ok(!peek.ok);
      assert.equal(peek.status, 404);
      const steal = await face.call(dev2.token, 'uninstall_mcp_server', { id: devInstall.id });
      assert.ok(!steal.ok);
      assert.equal(steal.status, 404);
      const rewrite = await face.call(dev2.token, 'update_mcp_server', { id: devInstall.id, secrets: { API_KEY: 'stolen-value-1' } });
      assert.ok(!rewrite.ok);
      assert.equal(rewrite.status, 404);
      // The auditor sees it (installs:read) but cannot change it.
      assert.ok((await face.call(people.auditor!.token, 'get_mcp_server', { id: devInstall.id })).ok);
      const auditorUninstall = await face.call(people.auditor!.token, 'uninstall_mcp_server', { id: devInstall.id });
      assert.ok(!auditorUninstall.ok);
      assert.equal(auditorUninstall.status, 403);

      const cleared = await face.call(dev.token, 'update_mcp_server', { id: devInstall.id, secrets: { API_KEY: null } });
      assert.ok(cleared.ok, JSON.stringify(cleared));
      assert.deepEqual([cleared.value.secrets.API_KEY, cleared.value.usable], ['not set', false]);
      assert.match(cleared.value.unusable_reasons.join(), /API_KEY/);
      const set = await face.call(dev.token, 'update_mcp_server', { id: devInstall.id, secrets: { API_KEY: SECRET } });
      assert.ok(set.ok);
      assert.equal(set.value.usable, true);

      const removed = await face.call(dev.token, 'uninstall_mcp_server', { id: devInstall.id });
      assert.ok(removed.ok);
      assert.equal(await rowsFor(catalogId, dev.id), 0);
      const dev2Install = (await face.call(dev2.token, 'list_my_mcp_servers', { scope: 'personal' })) as { value: { items: { id: string }[] } };
      const byAdmin = await face.call(people.admin!.token, 'uninstall_mcp_server', { id: dev2Install.value.items[0]!.id });
      assert.ok(byAdmin.ok);
    });

    test('the catalog: installs:admin to change it; a delete is refused while installed unless forced', async () => {
      const denied = await face.call(p('dev').token, 'create_mcp_catalog_entry', { name: 'nope-server', transport: 'stdio', command: 'npx' });
      assert.ok(!denied.ok);
      assert.equal(denied.status, 403);
      assert.match(denied.error.message, /installs:admin/);
      const noUrl = await face.call(people.admin!.token, 'create_mcp_catalog_entry', { name: 'bad-server', transport: 'remote' });
      assert.ok(!noUrl.ok);
      assert.deepEqual([noUrl.status, noUrl.error.field], [400, 'url']);
      const refused = await face.call(people.admin!.token, 'delete_mcp_catalog_entry', { id: catalogId });
      assert.ok(!refused.ok);
      assert.deepEqual([refused.status, refused.error.field], [409, 'force']);
      const forced = await face.call(people.admin!.token, 'delete_mcp_catalog_entry', { id: catalogId, force: true });
      assert.ok(forced.ok, JSON.stringify(forced));
      assert.ok(forced.value.installations_removed >= 2);
      assert.equal(await rowsFor(catalogId), 0);
    });
  });
}

test('install and uninstall audit events name the caller and the target user; no secret anywhere', async () => {
  await rt.runner.audit.flush();
  const rows = (await rt.auditRows()).filter((row) => ['install_mcp_server', 'uninstall_mcp_server'].includes(String(row.operation)));
  const allowed = rows.filter((row) => row.outcome === 'allowed');
  assert.ok(allowed.length >= 10);
  const forOther = allowed.filter((row) => row.operation === 'install_mcp_server' && row.actor_id === people.admin!.id && String(row.target).includes(`user:${people['dev2-REST']!.id}`));
  assert.ok(forOther.length >= 1, 'the admin-for-other install names the admin as actor and the target user');
  for (const row of allowed) assert.match(String(row.target), /^mcp_server:[0-9a-f-]{36} (user:[0-9a-f-]{36}|project:[0-9a-f-]{36}|org)$/);
  const uninstallByAdmin = allowed.filter((row) => row.operation === 'uninstall_mcp_server' && row.actor_id === people.admin!.id);
  assert.ok(uninstallByAdmin.some((row) => String(row.target).includes(`user:${people['dev2-REST']!.id}`)));
  const text = JSON.stringify(rows) + rt.logs.join('') + responses.join('');
  for (const secret of [SECRET, OTHER_SECRET]) assert.ok(!text.includes(secret), 'a secret leaked into audit, logs or responses');
});

test('secrets are stored sealed: the raw column holds no plaintext, only vault ciphertexts', async () => {
  const admin = people.admin!;
  const rest = new RemoteBackend(base, admin.token);
  const entry = await rest.call(OPERATIONS.create_mcp_catalog_entry!, { name: 'sealed-server', transport: 'stdio', command: 'npx', args: ['-y', 'server'], credential_fields: [{ name: 'API_KEY' }] });
  assert.ok(entry.ok);
  const installed = await rest.call(OPERATIONS.install_mcp_server!, { catalog_id: 'sealed-server', secrets: { API_KEY: SECRET } });
  assert.ok(installed.ok);
  const [row] = (await rt.db.orm.em.fork().execute('select secrets::text as secrets from mcp_installation where id = ?', [(installed.value as { id: string }).id])) as { secrets: string }[];
  assert.ok(row);
  assert.ok(!row.secrets.includes(SECRET));
  assert.match(JSON.parse(row.secrets).API_KEY, /^mv1:test:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
});

test('removing an account removes its personal installations; deactivating keeps them, unusable until reactivated', async () => {
  const admin = new RemoteBackend(base, people.admin!.token);
  const entry = await admin.call(OPERATIONS.create_mcp_catalog_entry!, { name: 'lifecycle-server', transport: 'remote', url: 'https://mcp.example.test/l' });
  assert.ok(entry.ok);
  const user = await makeUser(rt, { roles: ['developer'] });
  const installed = await admin.call(OPERATIONS.install_mcp_server!, { catalog_id: 'lifecycle-server', user_id: user.id });
  assert.ok(installed.ok);
  const id = (installed.value as { id: string }).id;
  assert.ok((await admin.call(OPERATIONS.deactivate_user!, { user_id: user.id })).ok);
  const inactive = await admin.call(OPERATIONS.get_mcp_server!, { id });
  assert.ok(inactive.ok);
  assert.deepEqual([(inactive.value as any).usable, (inactive.value as any).unusable_reasons], [false, ['its user is deactivated']]);
  assert.ok((await admin.call(OPERATIONS.reactivate_user!, { user_id: user.id })).ok);
  assert.equal(((await admin.call(OPERATIONS.get_mcp_server!, { id })) as { value: { usable: boolean } }).value.usable, true);
  const deleted = await admin.call(OPERATIONS.delete_user!, { user_id: user.id });
  assert.ok(deleted.ok);
  assert.equal((deleted.value as { mcp_servers_removed: number }).mcp_servers_removed, 1);
  const gone = await admin.call(OPERATIONS.get_mcp_server!, { id });
  assert.ok(!gone.ok);
  assert.equal(gone.error.code, 'not_found');
});

test('POST /api/mcp_server keeps the seed\'s camelCase shape as aliases: camelCase in, camelCase out; nowhere else', async () => {
  const admin = new RemoteBackend(base, people.admin!.token);
  assert.ok((await admin.call(OPERATIONS.create_mcp_catalog_entry!, { name: 'iac-server', transport: 'remote', url: 'https://mcp.example.test/iac', credential_fields: [{ name: 'api_key' }] })).ok);
  const target = await makeUser(rt, { roles: ['developer'] });
  const post = async (body: Record<string, unknown>) => {
    const response = await fetch(`${base}/api/mcp_server`, {
      method: 'POST',
      headers: { authorization: `Bearer ${people.admin!.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    responses.push(text);
    return { status: response.status, body: JSON.parse(text) };
  };

  const seed = await post({ catalogId: 'iac-server', userId: target.id, scope: 'personal', secrets: { api_key: SECRET } });
  assert.equal(seed.status, 201);
  assert.equal(seed.body.ownerId, target.id);
  assert.equal(seed.body.catalogName, 'iac-server');
  assert.deepEqual(seed.body.users, [{ id: target.id, email: target.email, name: target.name, displayName: target.displayName, active: true }]);
  assert.deepEqual(seed.body.secrets, { api_key: 'set' }, 'credential field names are the caller\'s own: never renamed');
  assert.ok(!('owner_id' in seed.body) && !('catalog_name' in seed.body), 'one spelling per answer');

  const snake = await post({ catalog_id: 'iac-server', user_id: target.id });
  assert.equal(snake.status, 200);
  assert.equal(snake.body.owner_id, target.id);
  assert.equal(snake.body.users[0].display_name, target.displayName);
  assert.ok(!('ownerId' in snake.body));

  const both = await post({ catalogId: 'iac-server', catalog_id: 'iac-server' });
  assert.deepEqual([both.status, both.body.error.field], [400, 'catalogId']);
  assert.match(both.body.error.message, /also given as catalog_id/);

  // Other routes and the tools take snake_case only.
  const listed = await fetch(`${base}/api/mcp_server?catalogId=iac-server`, { headers: { authorization: `Bearer ${people.admin!.token}` } });
  assert.equal(listed.status, 400);
  assert.match(JSON.stringify(await listed.json()), /catalogId/);
  const tool = await admin.call(OPERATIONS.list_mcp_servers!, { catalogId: 'iac-server' } as never);
  assert.ok(!tool.ok);
  assert.equal(tool.error.code, 'invalid_input');
});
