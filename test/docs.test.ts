import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { ALL_OPERATIONS } from '../lib/ops/index.ts';
import { servedBy } from '../lib/pm/settings.ts';
import { generatedReadme, README } from '../scripts/docs.ts';
import { makeUser, makeToken } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { OpenApiChecker } from './helpers/openapi.ts';

// The documents generated from the registry are current, and the OpenAPI document describes what
// the REST face really accepts and answers.

describe('generated docs', () => {
  test('the README\'s tool and route tables are what the registry generates (npm run docs)', () => {
    const committed = readFileSync(README, 'utf8');
    assert.equal(generatedReadme(committed), committed, 'README.md is out of date: run npm run docs');
    for (const op of ALL_OPERATIONS) {
      if (op.servers.length) assert.ok(committed.includes(`| \`${op.name}\``), `${op.name} is missing from the README's tool tables`);
      assert.ok(committed.includes(`| \`${op.route.method} ${op.route.path}\` | \`${op.name}\``), `${op.name}'s route is missing from the README`);
    }
  });

  test('a stale README is noticed: a table row removed or changed is put back', () => {
    const committed = readFileSync(README, 'utf8');
    const stale = committed.replace(/\| `whoami` \|[^\n]*\n/, '').replace('| `GET /api/me` |', '| `GET /api/whoami` |');
    assert.notEqual(stale, committed);
    assert.equal(generatedReadme(stale), committed);
  });

});

describe('GET /api/openapi.json', () => {
  let rt: TestRuntime;
  let server: Server;
  let base: string;
  let doc: Record<string, any>;
  let token: string;

  before(async () => {
    rt = await testRuntime();
    server = createHttpServer(rt);
    const address = await listen(server, '127.0.0.1', 0);
    base = `http://127.0.0.1:${address.port}`;
    token = recordSecret((await makeToken(rt, await makeUser(rt, { roles: ['admin'] }))).raw);
    const response = await fetch(`${base}/api/openapi.json`);
    assert.equal(response.status, 200, 'served without credentials');
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    doc = (await response.json()) as Record<string, any>;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rt.close();
  });

  test('an OpenAPI 3.1 document with one operation per route, each with its permission and effect', () => {
    assert.equal(doc.openapi, '3.1.0');
    const operations = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
      Object.entries(item).map(([method, operation]) => ({ path, method, operation })),
    );
    const ids = operations.map((o) => o.operation.operationId);
    assert.equal(new Set(ids).size, ids.length);
    // The deployment's routes: delete_issue only where deleting is enabled.
    assert.deepEqual([...ids].sort(), ALL_OPERATIONS.filter(servedBy(rt.pm.settings)).map((op) => op.name).sort());
    assert.ok(!ids.includes('delete_issue'));
    for (const { path, method, operation } of operations) {
      const op = ALL_OPERATIONS.find((candidate) => candidate.name === operation.operationId)!;
      assert.equal(`${method.toUpperCase()} ${path}`, `${op.route.method} ${op.route.path}`);
      assert.equal(operation['x-mandate-permission'] ?? null, op.permission);
      for (const name of path.match(/\{(\w+)\}/g) ?? []) {
        assert.ok(operation.parameters.some((p: any) => p.in === 'path' && p.name === name.slice(1, -1)), `${operation.operationId}: path parameter ${name}`);
      }
      if (method === 'get' || method === 'delete') assert.equal(operation.requestBody, undefined);
    }
  });

  test('every schema in it compiles as JSON Schema 2020-12', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    ajv.addSchema(doc, 'mandate-openapi');
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, operation] of Object.entries(item)) {
        const pointer = `mandate-openapi#/paths/${path.replace(/~/g, '~0').replace(/\//g, '~1')}/${method}/responses/2XX/content/application~1json/schema`;
        assert.ok(ajv.getSchema(pointer), `${operation.operationId}: the response schema compiles`);
      }
    }
  });

  test('real requests conform to it, and real answers match its response schemas', async () => {
    const checker = new OpenApiChecker(doc, '', 'Mandate');
    const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
    ajv.addSchema(doc, 'mandate');
    const call = async (method: string, path: string, body?: unknown) => {
      const url = new URL(path, base);
      assert.deepEqual(checker.check(method, url, body), [], `${method} ${path} does not conform to the document`);
      const response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const answer = (await response.json()) as any;
      assert.ok(response.ok, `${method} ${path}: ${JSON.stringify(answer)}`);
      const template = Object.keys(doc.paths).find((p) => new RegExp(`^${p.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(url.pathname))!;
      const validate = ajv.getSchema(`mandate#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${method.toLowerCase()}/responses/2XX/content/application~1json/schema`)!;
      assert.ok(validate(answer), `${method} ${path}: ${JSON.stringify(validate.errors)}`);
      return answer;
    };
    await call('GET', '/api/me');
    const created = await call('POST', '/api/admin/users', { email: `openapi-${Date.now()}@example.test`, roles: ['viewer'] });
    await call('GET', `/api/admin/users?limit=5&offset=0&active=true`);
    await call('GET', `/api/admin/users/${created.id}`);
    await call('PATCH', `/api/admin/users/${created.id}`, { display_name: 'Described' });
    await call('GET', '/api/admin/roles?limit=10');
    await call('GET', '/api/admin/permissions');
    await call('GET', `/api/admin/audit?operation=create_user`);
    await call('GET', '/api/me/permissions');
    assert.ok(checker.check('GET', new URL('/api/admin/users?colour=blue', base), undefined).some((p) => /colour/.test(p)), 'an undeclared parameter is a mismatch');
  });
});
