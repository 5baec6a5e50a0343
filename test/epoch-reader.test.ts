import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AccessEpoch } from '../lib/access/epoch.ts';
import { dedicatedEpochReader } from '../lib/db/epoch-reader.ts';
import { testRuntime, TEST_DB } from './helpers/db.ts';

const bump = (rt: Awaited<ReturnType<typeof testRuntime>>) => rt.db.orm.em.fork().execute('update access_epoch set version = version + 1 where id = 1');

test('PostgreSQL: the epoch has its own connection, which sees every committed change at once', { skip: TEST_DB !== 'postgres' && 'the dedicated connection exists on PostgreSQL only' }, async () => {
  const rt = await testRuntime();
  try {
    assert.ok(rt.db.epochReader, 'a PostgreSQL runtime reads the epoch on its own connection');
    const before = await rt.db.epochReader.read();
    await bump(rt);
    assert.equal(await rt.db.epochReader.read(), before + 1);
    const generation = await rt.resolver.epoch.sync(rt.db.orm.em.fork());
    await bump(rt);
    assert.equal(await rt.resolver.epoch.sync(rt.db.orm.em.fork()), generation + 1, 'a change made elsewhere moves the generation at the next sync');
  } finally {
    await rt.close();
  }
});

test('an epoch reader that fails is bypassed: the pool answers, and changes are still seen', async () => {
  const rt = await testRuntime();
  try {
    const broken = dedicatedEpochReader('postgres://nobody@127.0.0.1:1/nothing');
    const epoch = new AccessEpoch(broken);
    const first = await epoch.sync(rt.db.orm.em.fork());
    assert.equal(await epoch.sync(rt.db.orm.em.fork()), first, 'nothing changed');
    await bump(rt);
    assert.equal(await epoch.sync(rt.db.orm.em.fork()), first + 1);
    await broken.close();
  } finally {
    await rt.close();
  }
});
