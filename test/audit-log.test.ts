import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_DB, createPostgresDatabase, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mandate } from './helpers/cli.ts';
import { maintainAuditPartitions } from '../lib/audit/partitions.ts';
import { auditEvents } from '../lib/ops/audit-export.ts';
import * as ops from '../lib/ops/index.ts';
import { callerOf, makeUser } from './helpers/fixtures.ts';

// The audit log over time: monthly partitions, retention, and an export that streams.

let rt: TestRuntime;
before(async () => {
  rt = await testRuntime();
});
after(() => rt.close());

const em = () => rt.db.orm.em.fork();
const insertAt = (at: string, operation = 'test_event', count = 1) =>
  em().execute(
    `insert into audit_event (id, at, actor_name, operation, outcome) select gen_random_uuid(), ?::timestamptz, 'test', ?, 'allowed' from generate_series(1, ?)`,
    [at, operation, count],
    'run',
  );
const count = async (where = 'true', params: unknown[] = []) => (await em().execute<{ n: number }>(`select count(*)::int as n from audit_event where ${where}`, params, 'get'))!.n;
const partitionOf = async (at: string) =>
  (await em().execute<{ name: string }>(`select tableoid::regclass::text as name from audit_event where at = ?::timestamptz limit 1`, [at], 'get'))?.name;
const partitions = async () =>
  (await em().execute<{ name: string }[]>(`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit_event'::regclass order by 1`)).map((r) => r.name);

describe('monthly partitions', () => {
  test('this month and the next two are made ahead; events of a month not made yet wait in the default partition and move in when it is', async () => {
    await insertAt('2026-03-15T10:00:00Z', 'stranded_event', 3);
    assert.equal(await partitionOf('2026-03-15T10:00:00Z'), 'audit_event_default');
    const done = await maintainAuditPartitions(em(), new Date('2026-12-01T12:00:00Z'), null);
    assert.deepEqual(done.created, ['audit_event_y2026m03', 'audit_event_y2026m12', 'audit_event_y2027m01', 'audit_event_y2027m02']);
    assert.equal(await partitionOf('2026-03-15T10:00:00Z'), 'audit_event_y2026m03', 'the stranded events moved into their month');
    assert.equal(await count(`tableoid = 'audit_event_default'::regclass`), 0, 'the default partition is empty');
    assert.equal(await count(`operation = 'stranded_event'`), 3, 'none lost, none doubled');

    await insertAt('2027-01-10T00:00:00Z');
    assert.equal(await partitionOf('2027-01-10T00:00:00Z'), 'audit_event_y2027m01', 'a new event lands in its month');
    assert.deepEqual((await maintainAuditPartitions(em(), new Date('2026-12-01T12:00:00Z'), null)).created, [], 'a second run has nothing to do');
  });

  test('two instances maintaining at once: one makes the month, the other finds it made', async () => {
    const now = new Date('2027-02-20T00:00:00Z');
    const [first, second] = await Promise.all([maintainAuditPartitions(em(), now, null), maintainAuditPartitions(em(), now, null)]);
    assert.deepEqual([...first.created, ...second.created], ['audit_event_y2027m03', 'audit_event_y2027m04']);
  });

  test('query_audit reads across months, newest first, through the partitions', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    const result = await rt.runner.run(ops.queryAudit, callerOf(admin), { since: '2026-01-01T00:00:00Z', limit: 5 });
    assert.ok(result.ok);
    const times = result.value.items.map((item: { at: string }) => item.at);
    assert.ok(times.length > 0);
    assert.deepEqual(times, [...times].sort().reverse());
  });
});

describe('retention (MANDATE_AUDIT_RETENTION_DAYS)', () => {
  test('months wholly past the retention are dropped; the month it cuts loses its older part; newer events stay', async () => {
    const now = new Date('2027-03-31T00:00:00Z');
    await maintainAuditPartitions(em(), now, null);
    // 45 days before 2027-03-31 is 2027-02-14: January goes whole, February is cut.
    await insertAt('2027-02-10T00:00:00Z', 'retention_old', 2);
    await insertAt('2027-02-20T00:00:00Z', 'retention_kept', 2);
    await insertAt('2027-03-30T00:00:00Z', 'retention_kept', 1);
    assert.ok((await partitions()).includes('audit_event_y2026m03'));
    const done = await maintainAuditPartitions(em(), now, 45);
    assert.ok(done.dropped.includes('audit_event_y2026m03') && done.dropped.includes('audit_event_y2027m01'), `dropped ${done.dropped}`);
    assert.ok(!done.dropped.includes('audit_event_y2027m02'));
    assert.equal(done.deleted, 2, 'the two February events before the cutoff');
    assert.equal(await count(`at < '2027-02-14T00:00:00Z'`), 0, 'nothing older than the retention is left');
    assert.equal(await count(`operation = 'retention_kept'`), 3);
  });

  test('the setting is checked: a whole number of days, at least one', async () => {
    for (const value of ['0', '-3', '1.5', 'forever']) {
      const result = await mandate(['audit', 'maintain'], { MANDATE_DATA_DIR: 'memory://', MANDATE_AUDIT_RETENTION_DAYS: value });
      assert.equal(result.code, 1, value);
      assert.match(result.stderr, /MANDATE_AUDIT_RETENTION_DAYS: must be/, value);
    }
  });
});

describe('export', () => {
  test('streams every event in the window once, oldest first, across pages and equal timestamps', async () => {
    // 2,500 events, many sharing a timestamp: the keyset pages must neither skip nor repeat ties.
    await insertAt('2027-03-01T00:00:00Z', 'export_tie', 1200);
    await insertAt('2027-03-01T00:00:01Z', 'export_tie', 1300);
    await insertAt('2027-03-02T00:00:00Z', 'export_after', 1);
    const seen: { id: string; at: string; operation: string }[] = [];
    for await (const event of auditEvents(rt.db.orm, new Date('2027-03-01T00:00:00Z'), new Date('2027-03-02T00:00:00Z'))) seen.push(event);
    assert.equal(seen.length, 2500);
    assert.equal(new Set(seen.map((e) => e.id)).size, 2500, 'no event twice');
    assert.ok(seen.every((e) => e.operation === 'export_tie'), 'since is inclusive, until exclusive');
    assert.deepEqual(seen.map((e) => e.at), [...seen.map((e) => e.at)].sort());
  });
});

describe('mandate audit export', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  async function freshEnv(): Promise<Record<string, string>> {
    if (TEST_DB === 'postgres') return { DATABASE_URL: await createPostgresDatabase() };
    const dir = mkdtempSync(join(tmpdir(), 'mandate-audit-'));
    dirs.push(dir);
    return { MANDATE_DATA_DIR: dir };
  }

  test('JSON Lines on stdout, as query_audit shows events; no secret of the calls; the export is audited', async () => {
    const env = await freshEnv();
    const password = recordSecret('export-test password 42');
    const init = await mandate(['init', '--admin-email', 'root@example.test', '--admin-password', password], env);
    assert.equal(init.code, 0, init.stderr);
    recordSecret(init.stdout.trim().split('\n').at(-1)!);
    const exported = await mandate(['audit', 'export', '--since', '2000-01-01', '--format', 'jsonl'], env);
    assert.equal(exported.code, 0, exported.stderr);
    const events = exported.stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(events.map((e) => e.operation), ['create_user', 'create_token_for_user']);
    assert.deepEqual(Object.keys(events[0]!).sort(), ['actor_id', 'actor_name', 'at', 'detail', 'error_code', 'id', 'message', 'on_behalf_of', 'operation', 'outcome', 'permission', 'project_key', 'request_id', 'session_id', 'target']);
    assert.ok(!exported.stdout.includes(password), 'the password given to init is not in the export');
    assert.ok(!exported.stdout.includes(init.stdout.trim().split('\n').at(-1)!), 'nor the token it printed');
    assert.match(exported.stderr, /exported 2 audit event\(s\)/);

    const again = await mandate(['audit', 'export', '--since', '2000-01-01'], env);
    const last = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as { operation: string; actor_name: string; detail: { events: number } };
    assert.equal(last.operation, 'audit_export', 'the first export left its own event');
    assert.equal(last.actor_name, 'system:cli');
    assert.equal(last.detail.events, 2);
  });

  test('bad arguments: a clear message, exit 2, nothing written', async () => {
    const env = await freshEnv();
    const cases: [string[], RegExp][] = [
      [[], /--since is required/],
      [['--since', 'last week'], /--since must be an ISO 8601 date/],
      [['--since', '2026-13-45'], /--since must be an ISO 8601 date/],
      [['--since', '2026-02-01', '--until', '2026-01-01'], /--until must be after --since/],
      [['--since', '2026-01-01', '--format', 'csv'], /--format must be jsonl/],
    ];
    for (const [args, message] of cases) {
      const result = await mandate(['audit', 'export', ...args], env);
      assert.equal(result.code, 2, args.join(' '));
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
    }
  });
});
