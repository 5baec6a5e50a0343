import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessChanges } from '../lib/access/changes.ts';
import { CHANGES_QUERY, PRUNE_CHANGES_SQL, dedicatedChangeReader } from '../lib/db/change-reader.ts';
import pg from 'pg';
import { RoleAssignment } from '../lib/db/entities/index.ts';
import { ACCESS_CHANGE_CHANNEL } from '../lib/db/entities/access-change.ts';
import { testRuntime, TEST_DB } from './helpers/db.ts';
import { makeUser } from './helpers/fixtures.ts';

type Rt = Awaited<ReturnType<typeof testRuntime>>;
const change = (rt: Rt, subject: string | null) => rt.db.orm.em.fork().execute('select access_changed(?::uuid)', [subject], 'run');
const SOMEONE = '00000000-0000-4000-8000-00000000000a';
const SOMEONE_ELSE = '00000000-0000-4000-8000-00000000000b';

test('PostgreSQL: the feed has its own connection, which sees every committed change at once', { skip: TEST_DB !== 'postgres' && 'the dedicated connection exists on PostgreSQL only' }, async () => {
  const rt = await testRuntime();
  try {
    assert.ok(rt.db.changeReader, 'a PostgreSQL runtime reads the feed on its own connection');
    const first = await rt.db.changeReader.read(null);
    assert.deepEqual(first.changed, [], 'a first read only takes a position');
    await change(rt, SOMEONE);
    const second = await rt.db.changeReader.read(first.snapshot);
    assert.deepEqual(second.changed, [SOMEONE]);
    assert.deepEqual((await rt.db.changeReader.read(second.snapshot)).changed, [], 'each change is reported once');
    const stamp = await rt.resolver.changes.sync(rt.db.orm.em.fork());
    await change(rt, SOMEONE);
    assert.ok((await rt.resolver.changes.sync(rt.db.orm.em.fork())) > stamp, 'a change made elsewhere is seen at the next sync');
    assert.ok(rt.resolver.changes.changedSince(SOMEONE) > stamp);
    assert.ok(rt.resolver.changes.changedSince(SOMEONE_ELSE) <= stamp, 'and only for its subject');
    assert.equal((await rt.db.changeReader.read(null)).missed, false);
  } finally {
    await rt.close();
  }
});

test('a reader that fails is bypassed: the pool answers, and changes are still seen', async () => {
  const rt = await testRuntime();
  try {
    const broken = dedicatedChangeReader('postgres://nobody@127.0.0.1:1/nothing');
    const changes = new AccessChanges(broken);
    const first = await changes.sync(rt.db.orm.em.fork());
    assert.equal(await changes.sync(rt.db.orm.em.fork()), first, 'nothing changed');
    await change(rt, SOMEONE);
    assert.equal(await changes.sync(rt.db.orm.em.fork()), first + 1);
    assert.ok(!changes.isCurrent([SOMEONE], first));
    assert.ok(changes.isCurrent([SOMEONE_ELSE], first));
    await broken.close();
  } finally {
    await rt.close();
  }
});

test('a transaction that commits after a later one is still reported: the feed is read by snapshot, not by sequence', { skip: TEST_DB !== 'postgres' && 'needs two concurrent transactions: PGlite has one connection' }, async () => {
  const rt = await testRuntime();
  const { default: pg } = await import('pg');
  const url = (rt.config.database as { url?: string }).url!;
  const early = new pg.Client({ connectionString: url });
  const late = new pg.Client({ connectionString: url });
  try {
    await early.connect();
    await late.connect();
    const read = async (since: string | null) => (await rt.db.orm.em.fork().execute<{ snapshot: string; changed: string[] }>(CHANGES_QUERY, [since], 'get'))!;
    let position = (await read(null)).snapshot;
    // `early` takes the lower sequence number but commits last.
    await early.query('begin');
    await early.query('select access_changed($1::uuid)', [SOMEONE]);
    await late.query('select access_changed($1::uuid)', [SOMEONE_ELSE]);
    const between = await read(position);
    assert.deepEqual(between.changed, [SOMEONE_ELSE], 'the committed one is seen, the open one is not yet');
    position = between.snapshot;
    await early.query('commit');
    const after = await read(position);
    assert.deepEqual(after.changed, [SOMEONE], 'the late commit is reported, though its row sorts before the one already read');
    assert.deepEqual((await read(after.snapshot)).changed, []);
  } finally {
    await early.end().catch(() => undefined);
    await late.end().catch(() => undefined);
    await rt.close();
  }
});

test('rows pruned before a reader saw them (a transaction open past the feed\'s hour) make it drop every cached value', async () => {
  const rt = await testRuntime();
  try {
    const changes = new AccessChanges();
    const stamp = await changes.sync(rt.db.orm.em.fork());
    await changes.sync(rt.db.orm.em.fork());
    assert.ok(changes.isCurrent([SOMEONE], stamp), 'nothing pruned: nothing dropped');
    // A row committed now but inserted over an hour ago is pruned before this reader's next read.
    const em = rt.db.orm.em.fork();
    await em.execute(`insert into access_change (subject_id, at) values (?, now() - interval '2 hours')`, [SOMEONE], 'run');
    await em.execute(PRUNE_CHANGES_SQL, [], 'run');
    assert.equal(Number((await em.execute<{ n: string }>('select count(*) as n from access_change where subject_id = ?', [SOMEONE], 'get'))!.n), 0, 'the row is gone');
    await changes.sync(rt.db.orm.em.fork());
    assert.ok(!changes.isCurrent([SOMEONE_ELSE], stamp), 'what it may have missed is unknown: nothing cached is trusted');
    const after = changes.stamp;
    await changes.sync(rt.db.orm.em.fork());
    assert.ok(changes.isCurrent([SOMEONE_ELSE], after), 'once: the next read is back to normal');
  } finally {
    await rt.close();
  }
});

test('a transaction left open holds back pruning instead of making every reader drop everything', { skip: TEST_DB !== 'postgres' && 'needs a second connection holding a transaction open' }, async () => {
  const rt = await testRuntime();
  const { default: pg } = await import('pg');
  const open = new pg.Client({ connectionString: (rt.config.database as { url?: string }).url! });
  try {
    await open.connect();
    await open.query('begin');
    await open.query('select pg_current_xact_id()');
    const changes = new AccessChanges();
    const stamp = await changes.sync(rt.db.orm.em.fork());
    const em = rt.db.orm.em.fork();
    await em.execute(`insert into access_change (subject_id, at) values (?, now() - interval '2 hours')`, [SOMEONE], 'run');
    await changes.sync(rt.db.orm.em.fork());
    await em.execute(PRUNE_CHANGES_SQL, [], 'run');
    assert.equal(Number((await em.execute<{ n: string }>('select count(*) as n from access_change where subject_id = ?', [SOMEONE], 'get'))!.n), 1, 'a row newer than the open transaction stays');
    await changes.sync(rt.db.orm.em.fork());
    assert.ok(changes.isCurrent([SOMEONE_ELSE], stamp), 'no reader is told it missed anything');
    await open.query('commit');
    await em.execute(PRUNE_CHANGES_SQL, [], 'run');
    assert.equal(Number((await em.execute<{ n: string }>('select count(*) as n from access_change where subject_id = ?', [SOMEONE], 'get'))!.n), 0, 'and goes once it has ended');
  } finally {
    await open.end().catch(() => undefined);
    await rt.close();
  }
});

// On the embedded database one process holds the data directory (test/embedded-lock.test.ts shows a
// second process refused), so every change commits here and is heard at its commit: the feed is
// read only after one, never per call.
test('embedded: the feed is read only after an access change committed, and that change is seen at the next check', { skip: TEST_DB !== 'pglite' && 'the embedded database only' }, async () => {
  const rt = await testRuntime();
  try {
    const changes = rt.resolver.changes;
    assert.ok(rt.db.localFeed, 'an embedded runtime hears of the feed');
    // However slow this machine, the silence is trusted throughout (its bound is the next test's).
    changes.trustLocalFeedMs = 60_000;
    const user = await makeUser(rt, { roles: ['admin'] });
    const caller = { kind: 'user' as const, userId: user.id, email: user.email };
    const em = () => rt.db.orm.em.fork();
    assert.equal((await rt.resolver.resolveAnywhere(em(), caller)).grants.has('users:write'), true);
    const reads = changes.stats.reads;
    // Calls that change no one's access (reads, their audit events) send no read.
    for (let i = 0; i < 20; i++) {
      assert.equal((await rt.resolver.resolveAnywhere(em(), caller)).grants.has('users:write'), true);
      await rt.runner.audit.enqueue({ caller: { kind: 'system', name: 'test' }, operation: 'probe', outcome: 'allowed', detail: {} });
    }
    assert.equal(changes.stats.reads, reads, 'no feed read while nothing was appended to it');

    // A change rolled back is not heard: nothing committed.
    await assert.rejects(
      em().transactional(async (tx) => {
        await tx.execute('select access_changed(?::uuid)', [user.id], 'run');
        throw new Error('rolled back on purpose');
      }),
      /rolled back on purpose/,
    );
    await rt.resolver.resolveAnywhere(em(), caller);
    assert.equal(changes.stats.reads, reads, 'a rolled-back change is not heard');

    // The admin role removed by a plain ORM write (no operation, no cache told): the next check reads
    // the feed and the permission is gone.
    const fork = em();
    await fork.nativeDelete(RoleAssignment, { user: user.id });
    assert.equal((await rt.resolver.resolveAnywhere(em(), caller)).grants.has('users:write'), false, 'revoked at the next check');
    assert.equal(changes.stats.reads, reads + 1, 'one read, after the change');
    await rt.resolver.resolveAnywhere(em(), caller);
    assert.equal(changes.stats.reads, reads + 1, 'and none after it');
  } finally {
    await rt.close();
  }
});

// The skip trusts the session to notify: if that stopped (RESET ALL, DISCARD ALL, UNLISTEN, a PGlite
// instance rebuilt), each read notices, and the feed is read at every check again; and the session's
// silence is never trusted past a bound, so a change made in the gap is still seen.
test('embedded: a session that stopped notifying is noticed, and its silence is trusted for a bounded time only', { skip: TEST_DB !== 'pglite' && 'the embedded database only' }, async () => {
  const rt = await testRuntime();
  try {
    const changes = rt.resolver.changes;
    const em = () => rt.db.orm.em.fork();
    const admin = await makeUser(rt, { roles: ['admin'] });
    const other = await makeUser(rt, { roles: ['admin'] });
    const can = async (user: { id: string; email: string }) => (await rt.resolver.resolveAnywhere(em(), { userId: user.id })).grants.has('users:write');
    assert.equal(await can(admin), true);
    assert.equal(await can(other), true);

    // The listener goes (the setting stays): a change commits unheard. Within the bound the
    // silence stands; past it, a read, which finds the change and that the session no longer listens.
    changes.trustLocalFeedMs = 200;
    await em().execute('unlisten *');
    await em().nativeDelete(RoleAssignment, { user: admin.id });
    await new Promise((resolve) => setTimeout(resolve, 250));
    const reads = changes.stats.reads;
    assert.equal(await can(admin), false, 'an unheard change is seen once the silence is past its bound');
    assert.equal(changes.stats.reads, reads + 1);

    // From then on every check reads, however long the bound: the session is known not to notify.
    changes.trustLocalFeedMs = 60_000;
    await em().nativeDelete(RoleAssignment, { user: other.id });
    assert.equal(await can(other), false, 'revoked at the next check, with no wait');
    assert.equal(changes.stats.reads, reads + 2);
  } finally {
    await rt.close();
  }
});

test('embedded: RESET ALL in the session turns the skip off at the next read', { skip: TEST_DB !== 'pglite' && 'the embedded database only' }, async () => {
  const rt = await testRuntime();
  try {
    const changes = rt.resolver.changes;
    const em = () => rt.db.orm.em.fork();
    const user = await makeUser(rt, { roles: ['admin'] });
    const can = async () => (await rt.resolver.resolveAnywhere(em(), { userId: user.id })).grants.has('users:write');
    assert.equal(await can(), true);
    await em().execute('reset all');
    // One read after the reset (forced here), which finds the session silent for good.
    changes.trustLocalFeedMs = 0;
    assert.equal(await can(), true);
    changes.trustLocalFeedMs = 60_000;
    const reads = changes.stats.reads;
    await em().nativeDelete(RoleAssignment, { user: user.id });
    assert.equal(await can(), false, 'revoked at the next check');
    assert.equal(changes.stats.reads, reads + 1);
  } finally {
    await rt.close();
  }
});

test('PostgreSQL: an access change notifies no one (a NOTIFY would serialise the commits of every access change)', { skip: TEST_DB !== 'postgres' && 'PostgreSQL only' }, async () => {
  const rt = await testRuntime();
  const listener = new pg.Client({ connectionString: rt.config.database.kind === 'postgresql' ? rt.config.database.url : '' });
  try {
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(message.channel));
    await listener.query(`listen ${ACCESS_CHANGE_CHANNEL}`);
    // The same statement does notify in a session that asks for it: the listener is live.
    await listener.query(`select set_config('mandate.notify_access_changes', 'on', false), access_changed(null)`);
    await change(rt, SOMEONE);
    await listener.query('select pg_sleep(0.1)');
    assert.deepEqual(heard, [ACCESS_CHANGE_CHANNEL], "only the session that set mandate.notify_access_changes notified; the runtime's did not");
  } finally {
    await listener.end();
    await rt.close();
  }
});
