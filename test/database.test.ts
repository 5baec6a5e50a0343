import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_DB, clusterUrl, testRuntime, type TestRuntime } from './helpers/db.ts';
import { SYSTEM_ROLES } from '../lib/access/system-roles.ts';
import { ALL_PERMISSIONS } from '../lib/access/permissions.ts';
import { MIGRATIONS } from '../lib/db/migrations/index.ts';
import { schemaIsCurrent } from '../lib/db/orm.ts';
import { createUser } from '../lib/ops/index.ts';
import { User } from '../lib/db/entities/index.ts';

let rt: TestRuntime;
before(async () => {
  rt = await testRuntime();
});
after(() => rt.close());

test(`this pass runs on ${TEST_DB}, and the database says so`, async () => {
  const row = (await rt.db.orm.em.fork().execute("select version() as version, inet_server_port() as port", [], 'get')) as { version: string; port: number | null };
  if (TEST_DB === 'postgres') {
    assert.equal(rt.db.kind, 'postgresql');
    assert.match(row.version, /^PostgreSQL 1[5-9]/);
    assert.equal(row.port, Number(new URL(await clusterUrl()).port), 'connected to the harness cluster over TCP');
  } else {
    assert.equal(rt.db.kind, 'embedded');
    assert.equal(row.port, null, 'PGlite has no server port');
  }
});

test('every committed migration ran, and the entities match the migrated schema (no drift)', async () => {
  const ran = (await rt.db.orm.em.fork().execute('select name from mandate_migrations order by id')) as { name: string }[];
  assert.deepEqual(ran.map((r) => r.name), MIGRATIONS.map((m) => m.name));
  const diff = await rt.db.orm.schema.getUpdateSchemaSQL({ wrap: false });
  assert.equal(diff.replace("set names 'utf8';", '').trim(), '', `schema drift:\n${diff}`);
});

test('migrating again is a no-op', async () => {
  assert.deepEqual(await rt.db.migrate(), []);
});

test('a start on a current schema is one query; a missing migration is noticed (and then run by the migrator)', async () => {
  assert.equal(await schemaIsCurrent(rt.db.orm), true);
  const last = MIGRATIONS.at(-1)!.name;
  const em = rt.db.orm.em.fork();
  await em.execute('update mandate_migrations set name = ? where name = ?', [`${last}_renamed`, last]);
  try {
    assert.equal(await schemaIsCurrent(rt.db.orm), false);
  } finally {
    await em.execute('update mandate_migrations set name = ? where name = ?', [last, `${last}_renamed`]);
  }
  assert.equal(await schemaIsCurrent(rt.db.orm), true);
});

test('the seeded system roles equal the catalogue in code', async () => {
  const rows = (await rt.db.orm.em.fork().execute('select name, description, permissions, system from role where system order by name')) as {
    name: string; description: string; permissions: string[]; system: boolean;
  }[];
  const expected = [...SYSTEM_ROLES].sort((a, b) => a.name.localeCompare(b.name)).map((r) => ({ name: r.name, description: r.description, permissions: [...r.permissions].sort(), system: true }));
  assert.deepEqual(rows.map((r) => ({ ...r, permissions: [...r.permissions].sort() })), expected);
  assert.deepEqual([...rows.find((r) => r.name === 'admin')!.permissions].sort(), [...ALL_PERMISSIONS].sort());
});

test('emails are unique case-insensitively (stored normalised)', async () => {
  const system = { kind: 'system' as const, name: 'test' };
  assert.equal((await rt.runner.run(createUser, system, { email: 'Case@Example.test' })).ok, true);
  const again = await rt.runner.run(createUser, system, { email: 'CASE@example.TEST', name: 'case-two' });
  assert.equal(!again.ok && again.error.code, 'conflict');
  const em = rt.db.orm.em.fork();
  await assert.rejects(
    em.execute(`insert into app_user (id, name, email, display_name, type, active, created_at, updated_at) values (gen_random_uuid(), 'case-three', 'case@example.test', 'x', 'human', true, now(), now())`, [], 'run'),
    /app_user_email_unique/,
    'the unique index itself holds',
  );
});

test('two concurrent creates of the same email end with one row and a clean "already exists"', async () => {
  const system = { kind: 'system' as const, name: 'test' };
  for (let round = 0; round < 3; round++) {
    const email = `race-${round}@example.test`;
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => rt.runner.run(createUser, system, { email, name: `race-${round}-${i}` })),
    );
    const ok = results.filter((r) => r.ok);
    const failed = results.filter((r) => !r.ok);
    assert.equal(ok.length, 1, 'exactly one create wins');
    for (const r of failed) {
      assert.equal(!r.ok && r.error.code, 'conflict');
      assert.equal(!r.ok && r.error.message, 'a user with this email already exists');
      assert.equal(!r.ok && r.error.field, 'email');
    }
    assert.equal(await rt.db.orm.em.fork().count(User, { email }), 1);
  }
});
