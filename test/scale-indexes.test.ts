import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { TEST_DB, freshDatabaseConfig } from './helpers/db.ts';
import { openRuntime, type Runtime } from '../lib/runtime.ts';
import { createLogger } from '../lib/log.ts';
import { PermissionResolver } from '../lib/access/resolver.ts';
import { AccessChanges } from '../lib/access/changes.ts';
import { maintainAuditPartitions } from '../lib/audit/partitions.ts';
import * as ops from '../lib/ops/index.ts';
import type { AnyOperation } from '../lib/ops/operation.ts';
import type { UserCaller } from '../lib/identity/caller.ts';

// At a generated size large enough for PostgreSQL's planner to prefer indexes, every query behind
// the admin lists, the audit filters and the permission checks is index-backed: EXPLAIN shows no
// sequential scan of a big table. (PostgreSQL only: the embedded database is for small deployments.)

const USERS = 20_000;
const AUDIT_EVENTS = 200_000;
const skip = TEST_DB !== 'postgres' && 'the planner check runs on PostgreSQL';

let rt: Runtime;
let queries: string[] = [];
let admin: UserCaller;
let delegate: UserCaller;
let sample: { userId: string; delegatorId: string; target: string };

before(async () => {
  if (skip) return;
  const config = await freshDatabaseConfig();
  rt = await openRuntime(config, { command: 'test', log: createLogger({ level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) }), onQuery: (sql) => queries.push(sql) });
  const em = rt.db.orm.em.fork();
  await maintainAuditPartitions(em, new Date(), null);
  await maintainAuditPartitions(em, new Date(Date.now() - 40 * 86_400_000), null);
  await em.execute(`
    insert into app_user (id, name, email, display_name, type, active, created_at, updated_at)
    select gen_random_uuid(), 'scale' || i, 'scale' || i || '@example.test', 'Scale ' || substr(md5(i::text), 1, 12),
           case when i % 10 = 0 then 'agent' else 'human' end, i % 50 <> 0, now() - i * interval '1 second', now()
      from generate_series(1, ${USERS}) i`);
  await em.execute(`insert into role_assignment (id, user_id, role_id, created_at)
    select gen_random_uuid(), u.id, r.id, now() from app_user u, role r where u.name like 'scale%' and r.name = case when u.name ~ '^scale[0-9]{1,2}$' then 'admin' else 'developer' end`);
  await em.execute(`insert into delegation (id, delegator_id, delegate_id, permission, reason, created_at)
    select gen_random_uuid(), boss.id, u.id, 'users:read', 'scale', now() - row_number() over () * interval '1 second'
      from app_user u join app_user boss on boss.name = 'scale' || (1 + (substr(u.name, 6)::int % 99))
     where u.name ~ '^scale[0-9]{3,}$'`);
  await em.execute(`insert into api_token (id, user_id, name, prefix, hash, created_at)
    select gen_random_uuid(), id, 'scale', 'mnd_scale', md5(id::text) || md5(name), now() from app_user where name like 'scale%'`);
  await em.execute(`insert into mcp_session (id, user_id, transport, servers, created_at, last_seen_at)
    select gen_random_uuid(), id, 'http', 'core', now(), now() from app_user where name like 'scale%'`);
  await em.execute(`
    insert into audit_event (id, at, actor_id, actor_name, operation, outcome, target)
    select gen_random_uuid(), now() - (i % (35 * 86400)) * interval '1 second', u.id, u.name,
           (array['whoami','list_users','get_user','query_audit','create_user','update_user','issue_token'])[1 + i % 7],
           case when i % 97 = 0 then 'denied' else 'allowed' end, 'user:' || u.id
      from generate_series(1, ${AUDIT_EVENTS}) i
      join lateral (select id, name from app_user where name = 'scale' || (1 + i % ${USERS})) u on true`);
  // As autovacuum leaves a table at rest: statistics, and the trigram indexes' pending entries merged.
  await em.execute('vacuum analyze');
  const person = async (name: string): Promise<UserCaller> => {
    const row = (await em.execute<{ id: string; email: string }>('select id, email from app_user where name = ?', [name], 'get'))!;
    return { kind: 'user', userId: row.id, name, email: row.email, type: 'human' };
  };
  admin = await person('scale1');
  delegate = await person('scale12345');
  const delegation = (await em.execute<{ delegator_id: string }>('select delegator_id from delegation where delegate_id = ?', [delegate.userId], 'get'))!;
  sample = { userId: delegate.userId, delegatorId: delegation.delegator_id, target: `user:${delegate.userId}` };
});
after(async () => {
  await rt?.close();
});

/** Relations with more rows than the planner would ever read whole for one page. */
async function bigRelations(): Promise<Set<string>> {
  const rows = await rt.db.orm.em.fork().execute<{ name: string }[]>(`select relname as name from pg_class where relkind = 'r' and reltuples > 5000`);
  return new Set(rows.map((r) => r.name));
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}
function seqScans(node: PlanNode, out: string[] = []): string[] {
  if (node['Node Type'] === 'Seq Scan' && node['Relation Name']) out.push(node['Relation Name']);
  for (const child of node.Plans ?? []) seqScans(child, out);
  return out;
}

/** The SQL a call sends (the ORM's query log inlines its parameters), without the log's decorations. */
async function sqlOf(run: () => Promise<unknown>): Promise<string[]> {
  queries = [];
  await run();
  return queries
    .map((line) => line.replace(/^\[query\]\s*/, '').replace(/\s*\[took[^\]]*\]\s*$/, ''))
    .filter((sql) => /^\s*(select|with)\b/i.test(sql) && !sql.includes('access_change'));
}

async function assertIndexBacked(label: string, run: () => Promise<unknown>) {
  const big = await bigRelations();
  const sent = await sqlOf(run);
  assert.ok(sent.length > 0, `${label}: no query captured among ${JSON.stringify(queries.slice(0, 3))}`);
  for (const sql of sent) {
    const [row] = await rt.db.orm.em.fork().execute<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(`explain (format json) ${sql}`);
    const scanned = seqScans(row!['QUERY PLAN'][0]!.Plan).filter((name) => big.has(name));
    assert.deepEqual(scanned, [], `${label}: a sequential scan of ${scanned.join(', ')} in\n${sql}\n${JSON.stringify(row!['QUERY PLAN'][0]!.Plan)}`);
  }
}

const call = (op: AnyOperation, caller: UserCaller, input: Record<string, unknown>) => async () => {
  const result = await rt.runner.run(op, caller, input);
  assert.ok(result.ok, `${op.name}: ${!result.ok ? result.error.message : ''}`);
};

test('the generated data is large enough to matter', { skip }, async () => {
  const big = await bigRelations();
  for (const table of ['app_user', 'role_assignment', 'delegation', 'api_token', 'mcp_session']) assert.ok(big.has(table), `${table} is big`);
  assert.ok([...big].some((name) => name.startsWith('audit_event_y')), 'an audit partition is big');
});

test('admin lists: users (all, searched, filtered), delegations (all, by either side), tokens, sessions, role members, one user', { skip }, async () => {
  await assertIndexBacked('list_users', call(ops.listUsers, admin, {}));
  await assertIndexBacked('list_users search', call(ops.listUsers, admin, { search: 'scale1234' }));
  const displayName = (await rt.db.orm.em.fork().execute<{ display_name: string }>('select display_name from app_user where id = ?', [sample.userId], 'get'))!.display_name;
  await assertIndexBacked('list_users search by display name', call(ops.listUsers, admin, { search: displayName.slice(8, 16) }));
  await assertIndexBacked('list_users type', call(ops.listUsers, admin, { type: 'agent' }));
  await assertIndexBacked('list_delegations', call(ops.listDelegations, admin, {}));
  await assertIndexBacked('list_delegations delegator', call(ops.listDelegations, admin, { delegator_id: sample.delegatorId }));
  await assertIndexBacked('list_delegations delegate', call(ops.listDelegations, admin, { delegate_id: sample.userId }));
  await assertIndexBacked('list_delegations user', call(ops.listDelegations, admin, { user_id: sample.userId }));
  await assertIndexBacked('list_user_tokens', call(ops.listUserTokens, admin, { user_id: sample.userId }));
  await assertIndexBacked('list_user_sessions', call(ops.listUserSessions, admin, { user_id: sample.userId }));
  await assertIndexBacked('list_role_members', call(ops.listRoleMembers, admin, { role: 'admin' }));
  await assertIndexBacked('get_user', call(ops.getUser, admin, { user_id: sample.userId }));
});

test('audit query: by actor, operation, outcome, target, time window', { skip }, async () => {
  const day = 86_400_000;
  await assertIndexBacked('query_audit', call(ops.queryAudit, admin, {}));
  await assertIndexBacked('query_audit actor', call(ops.queryAudit, admin, { actor_id: sample.userId }));
  await assertIndexBacked('query_audit operation', call(ops.queryAudit, admin, { operation: 'create_user' }));
  await assertIndexBacked('query_audit outcome', call(ops.queryAudit, admin, { outcome: 'denied' }));
  await assertIndexBacked('query_audit target', call(ops.queryAudit, admin, { target: sample.target }));
  await assertIndexBacked('query_audit window', call(ops.queryAudit, admin, { since: new Date(Date.now() - 3 * day).toISOString(), until: new Date(Date.now() - 2 * day).toISOString() }));
});

test("permission checks: a delegate's permissions (cold), get_my_permissions, whoami", { skip }, async () => {
  await assertIndexBacked('cold check', () => new PermissionResolver(new AccessChanges()).resolve(rt.db.orm.em.fork(), delegate));
  await assertIndexBacked('get_my_permissions', call(ops.getMyPermissions, delegate, {}));
  await assertIndexBacked('whoami', call(ops.whoami, delegate, {}));
});

test('an access change of a user with many delegates is index-backed too (the trigger expands to them)', { skip }, async () => {
  const big = await bigRelations();
  const [row] = await rt.db.orm.em.fork().execute<{ 'QUERY PLAN': { Plan: PlanNode }[] }[]>(
    `explain (format json) select d.delegate_id from delegation d where d.delegator_id = ? and d.revoked_at is null`,
    [sample.delegatorId],
  );
  assert.deepEqual(seqScans(row!['QUERY PLAN'][0]!.Plan).filter((name) => big.has(name)), []);
});
