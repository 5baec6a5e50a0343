import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterUrl, createPostgresDatabase } from './helpers/db.ts';
import { loadConfig } from '../lib/config.ts';
import { openDatabase, type Database } from '../lib/db/orm.ts';
import { AccessChanges } from '../lib/access/changes.ts';
import { PermissionResolver } from '../lib/access/resolver.ts';
import { Role, RoleAssignment, User } from '../lib/db/entities/index.ts';
import type { UserCaller } from '../lib/identity/caller.ts';

// Two processes' worth of ORM on one real PostgreSQL (in both passes: this is about PostgreSQL):
// a change made through B is seen by A's very next check, a cached check costs one query, and a
// change to one user leaves every other user's cached result in place.

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

async function setupUser(db: Database, name = 'cross'): Promise<UserCaller> {
  const em = db.orm.em.fork();
  const user = em.create(User, { name, email: `${name}@example.test`, displayName: name, type: 'human', active: true });
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
  const resolverA = new PermissionResolver(new AccessChanges());
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

test('a repeated check costs one query (the feed read); a change costs a reload', async () => {
  const { id } = await a.orm.em.fork().findOneOrFail(User, { email: 'cross@example.test' });
  const resolver = new PermissionResolver(new AccessChanges());
  const user = { userId: id };
  await resolver.resolve(a.orm.em.fork(), user); // warm
  queriesOnA = [];
  for (let i = 0; i < 10; i++) await resolver.resolve(a.orm.em.fork(), user);
  assert.equal(queriesOnA.length, 10, `expected 10 queries for 10 cached checks, saw ${queriesOnA.length}`);
  assert.ok(queriesOnA.every((q) => q.includes('access_change')));

  await b.orm.em.fork().execute(`update role set description = description || '.' where name = 'viewer'`, [], 'run');
  await b.orm.em.fork().execute(`insert into role_assignment (id, user_id, role_id, created_at) select gen_random_uuid(), ?, id, now() from role where name = 'viewer'`, [id], 'run');
  queriesOnA = [];
  await resolver.resolve(a.orm.em.fork(), user);
  assert.equal(queriesOnA.length, 3, 'feed read + liveness + grants after a change');
  await b.orm.em.fork().execute(`delete from role_assignment where user_id = ?`, [id], 'run');
});

/** A's resolver, warmed for each caller; then the number of queries each next check costs. */
async function warmed(...callers: UserCaller[]) {
  const resolver = new PermissionResolver(new AccessChanges());
  for (const caller of callers) await resolver.resolve(a.orm.em.fork(), caller);
  return async (caller: UserCaller) => {
    queriesOnA = [];
    const result = await resolver.resolve(a.orm.em.fork(), caller);
    return { result, queries: queriesOnA.length };
  };
}

test("scoped: a change to user A's access leaves B's cached result in place, and is seen at A's next check", async () => {
  const userA = await setupUser(b, 'scoped-a');
  const userB = await setupUser(b, 'scoped-b');
  const check = await warmed(userA, userB);
  const emB = b.orm.em.fork();
  const viewer = await emB.findOneOrFail(Role, { name: 'viewer' });
  emB.create(RoleAssignment, { user: emB.getReference(User, userA.userId), role: viewer, project: null });
  await emB.flush();

  const forB = await check(userB);
  assert.equal(forB.queries, 1, "B's check is the feed read alone: A's change did not touch B's cache");
  assert.equal(forB.result.grants.size, 0);
  const forA = await check(userA);
  assert.equal(forA.queries, 3, "A's check reloads: feed read + liveness + grants");
  assert.deepEqual([...forA.result.grants.keys()], ['pm:read']);

  // Each kind of access change reaches its user and no one else.
  const changes: [string, () => Promise<unknown>][] = [
    ['deactivation', () => emB.execute('update app_user set active = false where id = ?', [userA.userId], 'run')],
    ['reactivation', () => emB.execute('update app_user set active = true where id = ?', [userA.userId], 'run')],
    ['an assignment removed', () => emB.execute('delete from role_assignment where user_id = ?', [userA.userId], 'run')],
    ['a token revoked', async () => {
      await emB.execute(`insert into api_token (id, user_id, name, prefix, hash, created_at) values (gen_random_uuid(), ?, 'scoped', 'mnd_x', md5(random()::text) || md5(random()::text), now())`, [userA.userId], 'run');
      await emB.execute('update api_token set revoked_at = now() where user_id = ?', [userA.userId], 'run');
    }],
  ];
  const liveAfter = [false, true, true, true];
  for (const [index, [what, apply]] of changes.entries()) {
    await check(userA);
    await check(userB);
    await apply();
    assert.equal((await check(userB)).queries, 1, `${what} of A left B's cached result in place`);
    const forA = await check(userA);
    assert.ok(forA.queries > 1, `${what} of A is seen at A's next check (it reloads)`);
    assert.equal(forA.result.live, liveAfter[index], what);
  }
});

test('scoped: a role edit reaches every holder of the role, and only them', async () => {
  const holder1 = await setupUser(b, 'holder-1');
  const holder2 = await setupUser(b, 'holder-2');
  const bystander = await setupUser(b, 'bystander');
  const emB = b.orm.em.fork();
  const auditor = emB.create(Role, { name: 'scoped-auditor', description: 'test', permissions: ['audit:read'], system: false });
  for (const holder of [holder1, holder2]) emB.create(RoleAssignment, { user: emB.getReference(User, holder.userId), role: auditor, project: null });
  await emB.flush();
  const check = await warmed(holder1, holder2, bystander);
  assert.deepEqual([...(await check(holder1)).result.grants.keys()], ['audit:read']);

  await emB.execute(`update role set permissions = array['audit:read','users:read'] where name = 'scoped-auditor'`, [], 'run');
  assert.equal((await check(bystander)).queries, 1, 'the bystander holds no such role: untouched');
  for (const holder of [holder1, holder2]) {
    const { result, queries } = await check(holder);
    assert.equal(queries, 3, 'each holder reloads');
    assert.deepEqual([...result.grants.keys()].sort(), ['audit:read', 'users:read']);
  }
});

test('scoped: the delegation cascade still stops the delegate at once, through a second instance', async () => {
  const delegator = await setupUser(b, 'cascade-delegator');
  const delegate = await setupUser(b, 'cascade-delegate');
  const emB = b.orm.em.fork();
  const admin = await emB.findOneOrFail(Role, { name: 'admin' });
  const held = emB.create(RoleAssignment, { user: emB.getReference(User, delegator.userId), role: admin, project: null });
  await emB.flush();
  await emB.execute(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at) values (gen_random_uuid(), ?, ?, 'users:read', 'test', now())`, [delegator.userId, delegate.userId], 'run');
  const check = await warmed(delegate);
  assert.ok((await check(delegate)).result.grants.has('users:read'));

  // The delegator loses the role: nothing about the delegate's own rows changed.
  await emB.nativeDelete(RoleAssignment, { id: held.id });
  const after = await check(delegate);
  assert.equal(after.result.grants.has('users:read'), false, "the delegate's permission stopped at its next check");
  assert.equal(after.queries, 3);
  // And a delegator deactivated (with the role back) stops it too.
  await emB.execute(`insert into role_assignment (id, user_id, role_id, created_at) values (gen_random_uuid(), ?, ?, now())`, [delegator.userId, admin.id], 'run');
  assert.ok((await check(delegate)).result.grants.has('users:read'));
  await emB.execute('update app_user set active = false where id = ?', [delegator.userId], 'run');
  assert.equal((await check(delegate)).result.grants.has('users:read'), false);
});

/** A second connection of its own, for a transaction left open while others commit. */
async function openTransaction() {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: a.orm.config.get('clientUrl') as string });
  await client.connect();
  await client.query('begin');
  return client;
}

test('no write skew: a role edit still open while the role is assigned reaches the new holder once it commits', async () => {
  const holder = await setupUser(b, 'skew-holder');
  const emB = b.orm.em.fork();
  const role = emB.create(Role, { name: 'skew-role', description: 'test', permissions: ['pm:read', 'pm:write'], system: false });
  await emB.flush();
  const check = await warmed(holder);
  const edit = await openTransaction();
  try {
    // The edit's trigger runs now, before the assignment exists: no holder to name.
    await edit.query(`update role set permissions = array['pm:read'] where id = $1`, [role.id]);
    emB.create(RoleAssignment, { user: emB.getReference(User, holder.userId), role, project: null });
    await emB.flush();
    assert.deepEqual([...(await check(holder)).result.grants.keys()].sort(), ['pm:read', 'pm:write'], 'read while the edit is open: the role as it was');
    await edit.query('commit');
  } finally {
    await edit.end();
  }
  assert.deepEqual([...(await check(holder)).result.grants.keys()], ['pm:read'], 'the committed edit is seen at the next check');
});

test('no write skew: a delegator losing its role while a delegation from it is made stops the delegate once it commits', async () => {
  const delegator = await setupUser(b, 'skew-delegator');
  const delegate = await setupUser(b, 'skew-delegate');
  const emB = b.orm.em.fork();
  const admin = await emB.findOneOrFail(Role, { name: 'admin' });
  const held = emB.create(RoleAssignment, { user: emB.getReference(User, delegator.userId), role: admin, project: null });
  await emB.flush();
  const check = await warmed(delegate);
  const removal = await openTransaction();
  try {
    await removal.query('delete from role_assignment where id = $1', [held.id]);
    await emB.execute(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at) values (gen_random_uuid(), ?, ?, 'users:write', 'test', now())`, [delegator.userId, delegate.userId], 'run');
    assert.ok((await check(delegate)).result.grants.has('users:write'), 'read while the removal is open: the delegator still holds it');
    await removal.query('commit');
  } finally {
    await removal.end();
  }
  assert.equal((await check(delegate)).result.grants.has('users:write'), false, 'the committed removal stops the delegate at its next check');
});

test('a token minted through a delegation dies when that delegation row is deleted, not only revoked', async () => {
  const delegator = await setupUser(b, 'minted-delegator');
  const delegate = await setupUser(b, 'minted-delegate');
  const service = await setupUser(b, 'minted-service');
  const emB = b.orm.em.fork();
  const admin = await emB.findOneOrFail(Role, { name: 'admin' });
  emB.create(RoleAssignment, { user: emB.getReference(User, delegator.userId), role: admin, project: null });
  emB.create(RoleAssignment, { user: emB.getReference(User, service.userId), role: await emB.findOneOrFail(Role, { name: 'viewer' }), project: null });
  await emB.flush();
  const delegation = (await emB.execute<{ id: string }>(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at) values (gen_random_uuid(), ?, ?, 'tokens:write', 'test', now()) returning id`, [delegator.userId, delegate.userId], 'get'))!;
  const token = (await emB.execute<{ id: string }>(`insert into api_token (id, user_id, name, prefix, hash, created_at, source_delegation_id) values (gen_random_uuid(), ?, 'minted', 'mnd_x', md5(random()::text) || md5(random()::text), now(), ?) returning id`, [service.userId, delegation.id], 'get'))!;
  const throughToken = { ...service, tokenId: token.id };
  const check = await warmed(throughToken);
  assert.equal((await check(throughToken)).result.live, true);
  await emB.execute('delete from delegation where id = ?', [delegation.id], 'run');
  const after = await check(throughToken);
  assert.equal(after.result.live, false, 'refused at its next check');
  assert.equal(after.result.deadReason, 'token_source_ended');
});

test('a token minted through a delegation lapses with it: the delegation\'s expiry bounds the cached result', async () => {
  const delegator = await setupUser(b, 'lapse-delegator');
  const delegate = await setupUser(b, 'lapse-delegate');
  const service = await setupUser(b, 'lapse-service');
  const emB = b.orm.em.fork();
  emB.create(RoleAssignment, { user: emB.getReference(User, delegator.userId), role: await emB.findOneOrFail(Role, { name: 'admin' }), project: null });
  await emB.flush();
  const delegation = (await emB.execute<{ id: string }>(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at) values (gen_random_uuid(), ?, ?, 'tokens:write', 'test', now()) returning id`, [delegator.userId, delegate.userId], 'get'))!;
  const token = (await emB.execute<{ id: string }>(`insert into api_token (id, user_id, name, prefix, hash, created_at, source_delegation_id) values (gen_random_uuid(), ?, 'lapse', 'mnd_x', md5(random()::text) || md5(random()::text), now(), ?) returning id`, [service.userId, delegation.id], 'get'))!;
  const throughToken = { ...service, tokenId: token.id };
  const check = await warmed(throughToken);
  await emB.execute(`update delegation set expires_at = now() + interval '1 second' where id = ?`, [delegation.id], 'run');
  assert.equal((await check(throughToken)).result.live, true, 'live until the delegation expires');
  await new Promise((resolve) => setTimeout(resolve, 1300));
  const after = await check(throughToken);
  assert.equal(after.result.live, false, 'and refused once it has, with no further change to report');
  assert.equal(after.result.deadReason, 'token_source_ended');
});

test('token last-used writes and new tokens are no access change; revocation is, for its user only', async () => {
  const em = a.orm.em.fork();
  const count = async () => Number((await em.execute<{ n: string }>('select count(*) as n from access_change', [], 'get'))!.n);
  const before = await count();
  const user = await em.findOneOrFail(User, { email: 'cross@example.test' });
  await em.execute(
    `insert into api_token (id, user_id, name, prefix, hash, created_at) values (gen_random_uuid(), ?, 't', 'mnd_x', repeat('a', 64), now())`,
    [user.id],
    'run',
  );
  await em.execute('update api_token set last_used_at = now() where user_id = ?', [user.id], 'run');
  assert.equal(await count(), before, 'insert and last-used report nothing');
  await em.execute('update api_token set revoked_at = now() where user_id = ? and revoked_at is null', [user.id], 'run');
  const reported = await em.execute<{ subject_id: string }[]>('select subject_id from access_change order by seq desc limit 1');
  assert.equal(await count(), before + 1);
  assert.deepEqual(reported.map((r) => r.subject_id), [user.id]);
});

test('no row is shared by all access changes: two transactions changing different users do not wait for each other', async () => {
  const one = await setupUser(b, 'lock-one');
  const two = await setupUser(b, 'lock-two');
  const { default: pg } = await import('pg');
  const url = (a.orm.config.get('clientUrl') as string);
  const first = new pg.Client({ connectionString: url });
  const second = new pg.Client({ connectionString: url });
  await first.connect();
  await second.connect();
  try {
    await first.query('begin');
    await first.query('update app_user set active = false where id = $1', [one.userId]);
    await second.query("set lock_timeout = '2s'");
    // With one epoch row, this second change waited for the first transaction's row lock.
    await second.query('update app_user set active = false where id = $1', [two.userId]);
    await first.query('commit');
  } finally {
    await first.end();
    await second.end();
  }
});
