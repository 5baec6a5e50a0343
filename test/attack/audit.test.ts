import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as ops from '../../lib/ops/index.ts';
import { User } from '../../lib/db/entities/index.ts';
import { makeToken } from '../helpers/fixtures.ts';
import { keepArtifact, recordSecret } from '../helpers/db.ts';
import { processDatabase } from '../helpers/stdio.ts';
import { startServe } from '../helpers/serve.ts';
import { attackRig, bearer, type Person, type Rig } from './rig.ts';

// Finding 2: one hostile request must not silence the audit log for everyone after it. After each
// poisoning request, a refused call by another user must be in the audit log within a second,
// without anyone flushing it; nothing is lost at SIGTERM; when nothing can be written, calls fail
// closed instead of running unaudited.

let rig: Rig;
let attacker: Person;
let victim: Person;
before(async () => {
  rig = await attackRig({ http: { trustProxy: { kind: 'hops', hops: 1 } } });
  attacker = await rig.person(['pm:read']);
  victim = await rig.person(['pm:read']);
});
after(() => rig.close());

const auditRows = (where: string, params: unknown[]) =>
  rig.rt.db.orm.em.fork().execute<Record<string, any>[]>(`select * from audit_event where ${where} order by at`, params);

/** A refused call by the victim, found in the audit log within a second (nobody flushes). */
async function victimStillAudited(label: string) {
  const requestId = `victim-${randomUUID()}`;
  const answer = await fetch(`${rig.base}/api/admin/users`, { headers: { ...bearer(victim.token), 'x-request-id': requestId } });
  assert.equal(answer.status, 403);
  const deadline = Date.now() + 1000;
  for (;;) {
    const rows = await auditRows('request_id = ?', [requestId]);
    if (rows.length === 1) {
      assert.equal(rows[0]!.outcome, 'denied');
      assert.equal(rows[0]!.actor_id, victim.id);
      return;
    }
    assert.ok(Date.now() < deadline, `after ${label}, the victim's refused call is not in the audit log within a second`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function mcpCall(auth: string, name: string, extraHeaders: Record<string, string> = {}) {
  const headers = { ...bearer(auth), 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...extraHeaders };
  const init = await fetch(`${rig.base}/mcp`, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'attacker', version: '1' } } }) });
  const session = init.headers.get('mcp-session-id')!;
  await init.text();
  const call = await fetch(`${rig.base}/mcp`, { method: 'POST', headers: { ...headers, 'mcp-session-id': session }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: {} } }) });
  const text = await call.text();
  keepArtifact('http-response', text);
  return JSON.parse(text);
}

describe('finding 2: no request can poison the batched audit writer', () => {
  test('a NUL character in a query string', async () => {
    const answer = await rig.api('GET', '/api/me?x=%00', attacker.token);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error.field, 'x');
    await victimStillAudited('a NUL in the query');
    const [row] = await auditRows("actor_id = ? and operation = 'whoami' and outcome = 'invalid'", [attacker.id]);
    assert.ok(row, 'the poisoning request is audited itself, sanitised');
    assert.ok(!JSON.stringify(row.detail).includes('\\u0000'));
  });

  test('a lone UTF-16 surrogate in a JSON body', async () => {
    const answer = await rig.api('POST', '/api/me/tokens', attacker.token, '{"name":"\\ud800 lone"}');
    assert.equal(answer.status, 400, answer.text);
    assert.equal(answer.body.error.field, 'name');
    await victimStillAudited('a lone surrogate');
  });

  test('tools named __proto__, constructor, toString: unknown tools (-32602) or, with the gateway separator, a gateway tool error; nothing stuck', async () => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const answer = await mcpCall(attacker.token, name);
      if (name.includes('__')) assert.equal(answer.result?.isError, true, `${name}: ${JSON.stringify(answer)}`);
      else assert.deepEqual([answer.error?.code, answer.error?.data?.code], [-32602, 'not_found'], `${name}: ${JSON.stringify(answer)}`);
    }
    await victimStillAudited('a tool named __proto__');
  });

  test('a huge X-Forwarded-For behind a trusted proxy', async () => {
    const answer = await rig.api('GET', '/api/admin/users', { ...bearer(attacker.token), 'x-forwarded-for': `${'9'.repeat(150)}, ${'a'.repeat(300)}` });
    assert.equal(answer.status, 403);
    await victimStillAudited('a 450-character X-Forwarded-For');
  });

  test('events the database would refuse as they are are still written, and never hold back the others', async () => {
    const requestId = `poison-${randomUUID()}`;
    rig.rt.runner.audit.enqueue({ caller: { kind: 'system', name: 'x\u0000'.repeat(500) }, operation: `\ud800${'o'.repeat(300)}`, outcome: 'failed', detail: { ['k\u0000']: '\udfff', deep: JSON.parse('['.repeat(50) + ']'.repeat(50)) }, target: '\u0000', message: 'm'.repeat(100_000), requestId, clientAddress: 'c'.repeat(500), sessionId: '\u0000' });
    await victimStillAudited('an event with NUL, surrogates and oversized values');
    const [row] = await auditRows('request_id = ?', [requestId]);
    assert.ok(row, 'the hostile event itself is written');
    assert.ok(row.client_address.length <= 100 && row.message.length <= 2000);
  });

  test('a batch the database refuses is written row by row: one bad row holds back nothing', async () => {
    const em = rig.rt.db.orm.em.fork();
    // A trigger stands for whatever the database may refuse that sanitising cannot foresee.
    await em.execute(`create or replace function test_refuse_audit() returns trigger as $$ begin
      if new.operation = 'test_unstorable' or new.message = 'refuse me' then raise exception 'refused by the test'; end if;
      return new; end; $$ language plpgsql`, [], 'run');
    await em.execute('create trigger test_refuse_audit before insert on audit_event for each row execute function test_refuse_audit()', [], 'run');
    const [good, rewritten, unstorable] = [`good-${randomUUID()}`, `rewritten-${randomUUID()}`, `unstorable-${randomUUID()}`];
    const unwritableBefore = rig.rt.runner.audit.stats.unwritable;
    try {
      const system = { kind: 'system' as const, name: 'test' };
      rig.rt.runner.audit.enqueue({ caller: system, operation: 'test_rewritten', outcome: 'failed', message: 'refuse me', detail: { input: { a: 1 } }, requestId: rewritten });
      rig.rt.runner.audit.enqueue({ caller: system, operation: 'test_unstorable', outcome: 'failed', detail: {}, requestId: unstorable });
      rig.rt.runner.audit.enqueue({ caller: system, operation: 'test_good', outcome: 'allowed', detail: {}, requestId: good });
      await victimStillAudited('a batch the database refuses');
      assert.equal((await auditRows('request_id = ?', [good])).length, 1);
      const [kept] = await auditRows('request_id = ?', [rewritten]);
      assert.equal(kept?.message, null, 'written with its free text dropped');
      assert.match(JSON.stringify(kept?.detail), /could not be stored/);
      assert.equal(rig.rt.runner.audit.stats.unwritable, unwritableBefore + 1, 'the one event no form of which could be stored is counted');
      assert.ok(rig.rt.logs.join('').includes('an audit event could not be stored in any form'));
      assert.ok(rig.rt.runner.audit.writable);
    } finally {
      await em.execute('drop trigger test_refuse_audit on audit_event', [], 'run');
    }
  });
});

describe('the audit fails closed', () => {
  test('while the audit log cannot be written, calls are refused (503); they run again, and the held events are written, once it can', async () => {
    const em = rig.rt.db.orm.em.fork();
    const before = `before-${randomUUID()}`;
    await em.execute('alter table audit_event rename to audit_event_away', [], 'run');
    try {
      const first = await fetch(`${rig.base}/api/me`, { headers: { ...bearer(victim.token), 'x-request-id': before } });
      assert.equal(first.status, 200, 'the failure is not known yet');
      const deadline = Date.now() + 3000;
      let refused: Response | undefined;
      while (Date.now() < deadline) {
        const answer = await fetch(`${rig.base}/api/me`, { headers: bearer(victim.token) });
        if (answer.status === 503) {
          refused = answer;
          break;
        }
        await answer.text();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.ok(refused, 'calls are refused while nothing can be audited');
      assert.match(((await refused.json()) as { error: { message: string } }).error.message, /audit log cannot be written/);
    } finally {
      await em.execute('alter table audit_event_away rename to audit_event', [], 'run');
    }
    const deadline = Date.now() + 5000;
    for (;;) {
      const answer = await fetch(`${rig.base}/api/me`, { headers: bearer(victim.token) });
      if (answer.status === 200) break;
      assert.ok(Date.now() < deadline, 'service resumes once the audit log is writable');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await rig.rt.runner.audit.flush();
    assert.equal((await auditRows('request_id = ?', [before])).length, 1, 'the event held while the database refused it is written');
  });
});

test('SIGTERM with calls in flight: every answered call has its audit event', async () => {
  const db = await processDatabase();
  let token = '';
  await db.use(async (rt) => {
    const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email: 'sigterm@example.test', roles: ['developer'] });
    assert.ok(created.ok);
    token = recordSecret((await makeToken(rt, await rt.db.orm.em.fork().findOneOrFail(User, { id: (created.value as { id: string }).id }))).raw);
  });
  const serve = await startServe(db.env);
  const answered: string[] = [];
  let stopping = false;
  const worker = async () => {
    while (!stopping) {
      const id = `sigterm-${randomUUID()}`;
      try {
        const response = await fetch(`${serve.url}/api/me`, { headers: { ...bearer(token), 'x-request-id': id } });
        if (response.status === 200) answered.push(id);
        await response.text();
      } catch {
        return; // the server is gone
      }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  while (answered.length < 200) await new Promise((resolve) => setTimeout(resolve, 5));
  const stopped = serve.stop();
  stopping = true;
  await Promise.all([stopped, ...workers]);
  await db.use(async (rt) => {
    const rows = await rt.db.orm.em.fork().execute<{ request_id: string }[]>("select request_id from audit_event where request_id like 'sigterm-%'");
    const written = new Set(rows.map((row) => row.request_id));
    const missing = answered.filter((id) => !written.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${answered.length} answered calls have no audit event`);
  });
  await db.dispose();
});
