import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { AuditWriter, type AuditRecord } from '../lib/audit/writer.ts';
import { createLogger } from '../lib/log.ts';
import type { Orm } from '../lib/db/orm.ts';

// The writer's scheduling on its own, against a stand-in for the database whose inserts the test
// controls: answered, refused as the database being away, or never answered (a frozen host).

type Behaviour = (rows: unknown[]) => Promise<void>;

function standIn(behaviour: { current: Behaviour }) {
  const inserts: number[] = [];
  const orm = {
    em: {
      fork: () => ({
        getKysely: () => ({
          insertInto: () => ({
            values: (rows: unknown[]) => ({
              onConflict: () => ({
                execute: () => {
                  inserts.push(rows.length);
                  return behaviour.current(rows);
                },
              }),
            }),
          }),
        }),
        execute: () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
      }),
    },
  } as unknown as Orm;
  return { orm, inserts };
}

const quiet = createLogger({ level: 'fatal', stream: new Writable({ write: (_c, _e, done) => done() }) });
const event = (n: number): AuditRecord => ({ caller: { kind: 'system', name: 'test' }, operation: 'test_event', outcome: 'allowed', detail: { n } });
const away = () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }));

test('a frozen database: an insert past its deadline counts as the database away; callers are answered at the deadline, later ones refused at once, and the retry writes everything', async () => {
  const behaviour = { current: (() => new Promise<void>(() => undefined)) as Behaviour };
  const { orm, inserts } = standIn(behaviour);
  const writer = new AuditWriter(orm, quiet, { deadlineMs: 200, retryMs: 100 });
  const started = performance.now();
  await writer.enqueue(event(1));
  const waited = performance.now() - started;
  assert.ok(waited >= 190 && waited < 2000, `answered at the deadline (${Math.round(waited)} ms)`);
  assert.equal(writer.writable, false, 'calls are refused from now on');
  const refusedAt = performance.now();
  await writer.enqueue(event(2));
  assert.ok(performance.now() - refusedAt < 50, 'an event queued while failing does not wait');
  behaviour.current = async () => undefined;
  for (let i = 0; i < 50 && !writer.writable; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(writer.writable, true, 'writable again once an insert gets through');
  assert.equal(writer.stats.written, 2, 'both events written by the retry');
  assert.ok(inserts.length >= 2);
});

test('inserts are at most maxBatch rows, one at a time; a batch the database refuses keeps its rows and the rest, in order', async () => {
  const behaviour = { current: (async () => undefined) as Behaviour };
  const { orm, inserts } = standIn(behaviour);
  const writer = new AuditWriter(orm, quiet, { maxBatch: 3, retryMs: 60_000 });
  await Promise.all(Array.from({ length: 10 }, (_, n) => writer.enqueue(event(n))));
  assert.deepEqual(inserts, [3, 3, 3, 1]);
  inserts.length = 0;
  let calls = 0;
  behaviour.current = () => (++calls === 2 ? away() : Promise.resolve());
  await Promise.all(Array.from({ length: 7 }, (_, n) => writer.enqueue(event(n))));
  assert.deepEqual(inserts, [3, 3], 'the second insert was refused, and nothing after it was tried');
  assert.equal(writer.writable, false);
  behaviour.current = async () => undefined;
  await writer.flush();
  assert.deepEqual(inserts, [3, 3, 3, 1], 'the refused rows and the rest, written together once it is back');
  assert.equal(writer.writable, true);
  assert.equal(writer.stats.written, 10 + 7);
});
