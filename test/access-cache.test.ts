import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterUrl, createPostgresDatabase } from './helpers/db.ts';
import { loadConfig } from '../lib/config.ts';
import { openDatabase, type Database } from '../lib/db/orm.ts';
import { AccessEpoch } from '../lib/access/epoch.ts';
import { PermissionResolver } from '../lib/access/resolver.ts';
import { Role, RoleAssignment, User } from '../lib/db/entities/index.ts';
import type { UserCaller } from '../lib/identity/caller.ts';

// Two processes' worth of ORM on one real PostgreSQL (in both passes: this is about PostgreSQL):
// a change made through B is seen by A's very next check, and a cached check costs one query.

let a: Database;
let b: Database;
let queriesOnA: string[] = [];

before(async () => {
  await clusterUrl();
  const url = await createPostgresDatabase();
  const config = loadConfig({ DATABASE_URL: url });
  a = await openDatabase(config.database, { command: 'instance A', onQuery: (sql) => queriesOnA.push(sql) });
  b = await openDatabase(config.database, { command: 'instance B', migrate: false });
});
after(async () => {
  await a?.close();
  await b?.close();
});

async function setupUser(db: Database): Promise<UserCaller> {
  const em = db.orm.em.fork();
  const user = em.create(User, { name: 'cross', email: 'cross@example.test', displayName: 'Cross', type: 'human', active: true });
  await em.flush();
  return { kind: 'user', userId: user.id, name: user.name, email: user.email, type: 'human' };
}

test('the database really is PostgreSQL (a server with a port, not PGlite)', async () => {
  const row = (await a.orm.em.fork().execute("select version() as version, current_setting('server_version_num')::int as num, inet_server_port() as port", [], 'get')) as {
    version: string;
    num: number;
    port: number | null;
  };
  assert.match(row.version, /^PostgreSQL 1[5-9]/);
  assert.ok(row.num >= 150000);
  assert.equal(row.port, Number(new URL(await clusterUrl()).port));
});

test('a change through a second ORM instance is seen on the next check of the first', async () => {
  const caller = await setupUser(b);
  const resolverA = new PermissionResolver(new AccessEpoch());
  const check = async () => resolverA.resolve(a.orm.em.fork(), caller);

  assert.equal((await check()).grants.size, 0);
  const emB = b.orm.em.fork();
  const viewer = await emB.findOneOrFail(Role, { name: 'viewer' });
  const assignment = emB.create(RoleAssignment, { user: emB.getReference(User, caller.userId), role: viewer, project: null });
  await emB.flush();
  assert.deepEqual([...(await check()).grants.keys()], ['pm:read'], 'assignment made on B seen on A');

  await emB.execute(`update role set permissions = array['pm:read','pm:write'] where name = 'viewer'`, [], 'run');
  assert.deepEqual([...(await check()).grants.keys()].sort(), ['pm:read', 'pm:write'], 'role edit made on B seen on A');
  await emB.execute(`update role set permissions = array['pm:read'] where name = 'viewer'`, [], 'run');

  await emB.execute('update app_user set active = false where id = ?', [caller.userId], 'run');
  assert.equal((await check()).live, false, 'deactivation made on B seen on A');
  await emB.execute('update app_user set active = true where id = ?', [caller.userId], 'run');
  assert.equal((await check()).live, true);

  await emB.nativeDelete(RoleAssignment, { id: assignment.id });
  assert.equal((await check()).grants.size, 0, 'removal made on B seen on A');
});

test('a repeated check costs one query (the epoch read); a change costs a reload', async () => {
  const { id } = await a.orm.em.fork().findOneOrFail(User, { email: 'cross@example.test' });
  const resolver = new PermissionResolver(new AccessEpoch());
  const user = { userId: id };
  await resolver.resolve(a.orm.em.fork(), user); // warm
  queriesOnA = [];
  for (let i = 0; i < 10; i++) await resolver.resolve(a.orm.em.fork(), user);
  assert.equal(queriesOnA.length, 10, `expected 10 queries for 10 cached checks, saw ${queriesOnA.length}`);
  assert.ok(queriesOnA.every((q) => q.includes('access_epoch')));

  await b.orm.em.fork().execute(`update role set description = description || '.' where name = 'viewer'`, [], 'run');
  queriesOnA = [];
  await resolver.resolve(a.orm.em.fork(), user);
  assert.equal(queriesOnA.length, 3, 'epoch read + liveness + grants after a change');
});

test('token last-used writes do not invalidate caches; revocation does', async () => {
  const em = a.orm.em.fork();
  const before = Number(((await em.execute('select version from access_epoch', [], 'get')) as { version: string }).version);
  const user = await em.findOneOrFail(User, { email: 'cross@example.test' });
  await em.execute(
    `insert into api_token (id, user_id, name, prefix, hash, created_at) values (gen_random_uuid(), ?, 't', 'mnd_x', repeat('a', 64), now())`,
    [user.id],
    'run',
  );
  await em.execute('update api_token set last_used_at = now() where user_id = ?', [user.id], 'run');
  const mid = Number(((await em.execute('select version from access_epoch', [], 'get')) as { version: string }).version);
  assert.equal(mid, before, 'insert and last-used do not bump the epoch');
  await em.execute('update api_token set revoked_at = now() where user_id = ?', [user.id], 'run');
  const after = Number(((await em.execute('select version from access_epoch', [], 'get')) as { version: string }).version);
  assert.equal(after, before + 1);
});
