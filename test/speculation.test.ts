import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { AccessCache, AccessChanges } from '../lib/access/changes.ts';
import { Speculation, SpeculationFailed } from '../lib/access/speculation.ts';
import type { Em } from '../lib/db/orm.ts';
import { operation, type AnyOperation } from '../lib/ops/operation.ts';
import { testRuntime, type TestRuntime } from './helpers/db.ts';
import { callerOf, makeUser } from './helpers/fixtures.ts';

type Read = { snapshot: string; changed: string[] };

/** A feed reader the test answers by hand: each read waits until `answer(changed)`. */
function handReader() {
  const pending: { sentAt: number; since: string | null; resolve: (read: Read) => void }[] = [];
  let position = 0;
  return {
    pending,
    read: (since: string | null) => new Promise<Read>((resolve) => pending.push({ sentAt: performance.now(), since, resolve })),
    /** Answers the oldest read still out: these users' access changed since the read before. */
    answer(changed: string[] = []) {
      const read = pending.shift();
      assert.ok(read, 'a read is out');
      read.resolve({ snapshot: `s${++position}`, changed });
    },
  };
}

const ALICE = 'alice-id';
const BOB = 'bob-id';

// The reader always answers here; the ORM is the fallback only when it throws.
const noOrm = (() => {
  throw new Error('the ORM fallback was used');
}) as unknown as () => Em;

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('AccessChanges: every caller is answered by a read sent after it arrived', () => {
  test('callers who arrive while a read is out share one read sent when it is back, never the early one', async () => {
    const reader = handReader();
    const epoch = new AccessChanges(reader);
    const first = epoch.sync(noOrm);
    const arrivals = [performance.now(), performance.now(), performance.now()];
    const late = arrivals.map((arrived) => epoch.sync(noOrm, arrived));
    await tick();
    assert.equal(reader.pending.length, 1, 'no second read is sent while the first is out');
    assert.equal(reader.pending[0]!.since, null, 'the first read takes a position');
    reader.answer([ALICE]);
    assert.equal(await first, 1);
    let settled = false;
    void Promise.all(late).then(() => (settled = true));
    await tick();
    assert.equal(settled, false, 'the first read was sent before they arrived: it does not answer for them');
    assert.equal(reader.pending.length, 1, 'one read serves all three');
    assert.ok(reader.pending[0]!.sentAt >= Math.max(...arrivals), 'and it was sent after the last of them arrived');
    assert.equal(reader.pending[0]!.since, 's1', 'from where the one before left off');
    reader.answer([BOB]);
    assert.deepEqual(await Promise.all(late), [2, 2, 2], 'the change it found is seen by each of them');
    assert.equal(epoch.stats.reads, 2);
    assert.equal(epoch.isCurrent([ALICE], 1), true, "values of Alice loaded after the first read survive Bob's change");
    assert.equal(epoch.isCurrent([BOB], 1), false);
  });

  test('callers queued behind a read that fails fail with it: the database is away, and a second read would only double their wait', async () => {
    let reads = 0;
    let fail: (error: Error) => void = () => {};
    const changes = new AccessChanges({
      read: () => {
        reads++;
        return new Promise((_, reject) => (fail = reject));
      },
    });
    const brokenOrm = { execute: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) } as unknown as Em;
    const first = changes.sync(brokenOrm);
    await tick();
    const queued = changes.sync(brokenOrm, performance.now());
    fail(new Error('Query read timeout'));
    await assert.rejects(first, /ECONNREFUSED/);
    await assert.rejects(queued, /ECONNREFUSED/);
    assert.equal(reads, 1, 'no second read was sent for the queued caller');
  });

  test('a change for everyone (a role with very many holders) drops every subject', async () => {
    const reader = handReader();
    const changes = new AccessChanges(reader);
    const first = changes.sync(noOrm);
    reader.answer();
    const stamp = await first;
    const next = changes.sync(noOrm, performance.now());
    reader.answer(['*']);
    await next;
    assert.equal(changes.isCurrent([ALICE], stamp), false);
    assert.equal(changes.isCurrent([BOB], stamp), false);
  });

  test('a failed read does not strand the callers queued behind it', async () => {
    let calls = 0;
    const epoch = new AccessChanges({
      read: async () => {
        calls++;
        if (calls === 1) throw new Error('connection lost');
        return { snapshot: 's2', changed: [] };
      },
    });
    const orm = { execute: async () => ({ snapshot: 's1', changed: [ALICE] }) } as unknown as Em;
    const first = epoch.sync(orm);
    const queued = epoch.sync(orm, performance.now());
    assert.equal(await first, 1, 'the pool answered for the broken reader');
    assert.equal(await queued, 1);
  });
});

describe('Speculation: the caches are trusted only once a read sent after the request vouches for them', () => {
  test('nothing to speculate from before the first read', () => {
    assert.equal(Speculation.begin(new AccessChanges(handReader()), noOrm, performance.now()), undefined);
  });

  test("nothing changed: confirmed; the caller's access changed: refused, and settle() throws; someone else's: confirmed", async () => {
    const reader = handReader();
    const epoch = new AccessChanges(reader);
    const warm = epoch.sync(noOrm);
    reader.answer();
    await warm;

    const still = Speculation.begin(epoch, noOrm, performance.now())!;
    still.touch(ALICE);
    assert.ok(still.notBefore <= epoch.lastReadStarted, 'checks made under it do not wait for a read');
    assert.equal(await epoch.sync(noOrm, still.notBefore), epoch.stamp, 'and do not send one');
    assert.equal(reader.pending.length, 1, 'only its own read is out');
    reader.answer();
    assert.equal(await still.confirmed(), true);
    await still.settle();

    // A revocation committed after the caches were filled and before the request arrived.
    const moved = Speculation.begin(epoch, noOrm, performance.now())!;
    moved.touch(ALICE);
    reader.answer([ALICE]);
    assert.equal(await moved.confirmed(), false);
    await assert.rejects(moved.settle(), SpeculationFailed);

    // Bob's access changed; Alice's request used only Alice's cached values.
    const others = Speculation.begin(epoch, noOrm, performance.now())!;
    others.touch(ALICE);
    reader.answer([BOB]);
    assert.equal(await others.confirmed(), true);
    assert.deepEqual(epoch.stats, { reads: 4, invalidations: 2, speculations: 3, speculationsFailed: 1 });
  });

  test("the caller's cached values are judged by what they were computed from: a delegator's change refuses; an old stale value of hers does not", async () => {
    const reader = handReader();
    const changes = new AccessChanges(reader);
    const cache = new AccessCache<string>(changes);
    const warm = changes.sync(noOrm);
    reader.answer();
    const stamp = await warm;
    const now = new Date();
    cache.set('alice|session-1', { value: 'through the delegation from X', subject: ALICE, dependsOn: ['delegator-x'], validUntil: null }, stamp);
    cache.set('alice|session-0', { value: 'an ended session', subject: ALICE, dependsOn: ['session-0-role'], validUntil: null }, stamp);
    const ending = changes.sync(noOrm, performance.now());
    reader.answer(['session-0-role']);
    await ending;
    assert.equal(cache.get('alice|session-0', now), undefined, 'stale before the request below began');

    const unrelated = Speculation.begin(changes, noOrm, performance.now())!;
    unrelated.touch(ALICE);
    assert.equal(cache.get('alice|session-1', now, unrelated), 'through the delegation from X');
    reader.answer([BOB]);
    assert.equal(await unrelated.confirmed(), true, "an unrelated change, and her old session's value gone stale earlier, change nothing");

    const delegatorChanged = Speculation.begin(changes, noOrm, performance.now())!;
    delegatorChanged.touch(ALICE);
    assert.equal(cache.get('alice|session-1', now, delegatorChanged), 'through the delegation from X');
    reader.answer(['delegator-x']);
    assert.equal(await delegatorChanged.confirmed(), false, 'the delegator of a delegation her value rests on changed: redone');
    assert.equal(cache.get('alice|session-1', now), undefined);

    // A value used and then dropped for room before the verdict is judged all the same.
    const tiny = new AccessCache<string>(changes, 1);
    tiny.set('alice', { value: 'again', subject: ALICE, dependsOn: ['delegator-x'], validUntil: null }, changes.stamp);
    const cleared = Speculation.begin(changes, noOrm, performance.now())!;
    assert.equal(tiny.get('alice', now, cleared), 'again');
    tiny.set('bob', { value: 'bob', subject: BOB, validUntil: null }, changes.stamp);
    assert.equal(tiny.get('alice', now), undefined, 'dropped for room');
    reader.answer(['delegator-x']);
    assert.equal(await cleared.confirmed(), false, 'the value it used was stale: redone');
  });

  test('the verdict is given once: a change reported after it does not undo a request that already acted on it', async () => {
    const reader = handReader();
    const changes = new AccessChanges(reader);
    const warm = changes.sync(noOrm);
    reader.answer();
    await warm;
    const speculation = Speculation.begin(changes, noOrm, performance.now())!;
    speculation.touch(ALICE);
    reader.answer();
    assert.equal(await speculation.confirmed(), true);
    const later = changes.sync(noOrm, performance.now());
    reader.answer([ALICE]);
    await later;
    assert.equal(await speculation.confirmed(), true, 'still confirmed: what ran after settling ran on vouched caches');
  });

  test('a read that fails vouches for nothing', async () => {
    let fail = false;
    const epoch = new AccessChanges({ read: async () => (fail ? Promise.reject(new Error('down')) : { snapshot: 's', changed: [] }) });
    const brokenOrm = { execute: async () => Promise.reject(new Error('down too')) } as unknown as Em;
    await epoch.sync(brokenOrm);
    fail = true;
    const speculation = Speculation.begin(epoch, brokenOrm, performance.now())!;
    assert.equal(await speculation.confirmed(), false);
  });
});

describe('the runner under a speculation', () => {
  let rt: TestRuntime;
  before(async () => {
    rt = await testRuntime();
  });
  after(() => rt.close());

  const ran: string[] = [];
  let readRan = () => {};
  /** A test operation that notes it ran (`kind`) and answers `{ [kind]: true }`. */
  const probe = (kind: string, method: 'GET' | 'POST', effect: AnyOperation['effect'], onRun = () => {}) =>
    operation({
      name: `test_spec_${kind}`,
      servers: [],
      route: { method, path: `/api/test/spec_${kind}` },
      title: 'test',
      description: 'test',
      input: z.strictObject({}),
      output: z.record(z.string(), z.literal(true)),
      permission: null,
      effect,
      annotations: {},
      async run() {
        ran.push(kind);
        onRun();
        return { [kind]: true };
      },
    });
  const readLocal = probe('read', 'GET', 'read', () => readRan());
  const readUpstream = probe('upstream', 'GET', 'upstream-read');
  const write = probe('write', 'POST', 'write');

  /** A speculation for the caller whose read the test answers: `moved` (the caller's access changed) decides the verdict. */
  async function speculation(userId: string) {
    const reader = handReader();
    const epoch = new AccessChanges(reader);
    const warm = epoch.sync(noOrm);
    reader.answer();
    await warm;
    const spec = Speculation.begin(epoch, noOrm, performance.now())!;
    spec.touch(userId);
    return { spec, verdict: (moved: boolean) => reader.answer(moved ? [userId] : []) };
  }

  async function auditFor(requestId: string) {
    await rt.runner.audit.flush();
    return rt.db.orm.em.fork().execute('select outcome from audit_event where request_id = ?', [requestId]);
  }

  test('a local read runs while the read is out, but its answer and audit event wait for the verdict', async () => {
    const user = await makeUser(rt, {});
    const { spec, verdict } = await speculation(user.id);
    ran.length = 0;
    let answered = false;
    const running = new Promise<void>((resolve) => (readRan = resolve));
    const call = rt.runner.run(readLocal, callerOf(user), {}, { requestId: 'spec-held', speculation: spec });
    void call.then(() => (answered = true));
    await running;
    assert.deepEqual(ran, ['read'], 'it ran without waiting for the verdict');
    await tick();
    assert.equal(answered, false, 'but is not answered yet');
    assert.deepEqual(await auditFor('spec-held'), [], 'nor audited');
    verdict(false);
    assert.deepEqual(await call, { ok: true, value: { read: true } });
    assert.deepEqual(await auditFor('spec-held'), [{ outcome: 'allowed' }]);
  });

  test('a local read whose speculation fails leaves no answer, no audit event and no log line', async () => {
    const user = await makeUser(rt, {});
    const { spec, verdict } = await speculation(user.id);
    const logged = rt.logs.length;
    const call = rt.runner.run(readLocal, callerOf(user), {}, { requestId: 'spec-dropped', speculation: spec });
    verdict(true);
    await assert.rejects(call, SpeculationFailed);
    assert.deepEqual(await auditFor('spec-dropped'), []);
    assert.ok(!rt.logs.slice(logged).join('').includes('spec-dropped'));
  });

  test('a failed call is not audited either until the verdict: an invalid input under a changed access leaves nothing', async () => {
    const user = await makeUser(rt, {});
    const { spec, verdict } = await speculation(user.id);
    const call = rt.runner.run(readLocal, callerOf(user), { stray: 1 }, { requestId: 'spec-invalid', speculation: spec });
    verdict(true);
    await assert.rejects(call, SpeculationFailed);
    assert.deepEqual(await auditFor('spec-invalid'), []);
  });

  const guarded: [AnyOperation, string][] = [
    [write, 'a write'],
    [readUpstream, 'a read from another system (openWorld)'],
  ];
  for (const [op, what] of guarded) {
    test(`${what} never runs on unconfirmed caches: it waits for the verdict, and a changed access stops it`, async () => {
      const user = await makeUser(rt, {});
      const refused = await speculation(user.id);
      ran.length = 0;
      const call = rt.runner.run(op, callerOf(user), {}, { requestId: `spec-${op.name}-refused`, speculation: refused.spec });
      for (let i = 0; i < 20; i++) await tick();
      assert.deepEqual(ran, [], 'nothing runs while the read is out');
      refused.verdict(true);
      await assert.rejects(call, SpeculationFailed);
      assert.deepEqual(ran, [], 'nor after a changed access');
      assert.deepEqual(await auditFor(`spec-${op.name}-refused`), []);

      const held = await speculation(user.id);
      const allowed = rt.runner.run(op, callerOf(user), {}, { requestId: `spec-${op.name}-held`, speculation: held.spec });
      held.verdict(false);
      assert.equal((await allowed).ok, true);
      assert.deepEqual(ran, [op.name === write.name ? 'write' : 'upstream']);
      assert.deepEqual(await auditFor(`spec-${op.name}-held`), [{ outcome: 'allowed' }]);
    });
  }
});
