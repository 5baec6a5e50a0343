import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { createHttpServer, listen } from '../../lib/http/server.ts';
import { passwordStats } from '../../lib/identity/passwords.ts';
import { openRuntime, type Runtime } from '../../lib/runtime.ts';
import { createLogger } from '../../lib/log.ts';
import { keepArtifact, recordSecret, TEST_DB } from '../helpers/db.ts';
import { attackRig, basic, type Rig } from './rig.ts';

// Finding 3: the failed-login limiter cannot be raced. Each attempt takes its point before the
// password is verified, so 50 concurrent guesses cost at most 5 verifications, on one instance
// and across two sharing PostgreSQL; and finding 7: behind a proxy the client cannot choose the
// address it is counted under.

let rig: Rig;
before(async () => {
  rig = await attackRig({ http: { trustProxy: { kind: 'hops', hops: 1 } } });
});
after(() => rig.close());

const guess = (base: string, email: string, password: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/api/me`, { headers: { ...basic(email, password), ...headers } }).then(async (response) => {
    keepArtifact('http-response', await response.text());
    return response.status;
  });

const count = (statuses: number[], status: number) => statuses.filter((s) => s === status).length;

describe('finding 3: concurrency cannot beat the limiter', () => {
  test('50 concurrent wrong passwords: at most 5 verifications, the rest 429; a right password sent among them is refused', async () => {
    const password = 'the right one, concurrent 1';
    const victim = await rig.person(['pm:read'], { password });
    const verified = passwordStats.verifications;
    const wrong = Array.from({ length: 50 }, (_, i) => guess(rig.base, victim.email, recordSecret(`wrong guess ${i} ${Math.random()}`), { 'x-forwarded-for': `10.9.${i}.1` }));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const right = guess(rig.base, victim.email, password);
    const statuses = await Promise.all(wrong);
    assert.ok(passwordStats.verifications - verified <= 5, `${passwordStats.verifications - verified} passwords were verified`);
    assert.ok(count(statuses, 401) <= 5, `${count(statuses, 401)} guesses were answered 401`);
    assert.equal(count(statuses, 401) + count(statuses, 429), 50);
    assert.equal(await right, 429, 'the right password is refused while the account is blocked');
  });

  test('a successful login gives its point back: signing in again and again is never limited', async () => {
    const password = 'signs in often 1';
    const user = await rig.person(['pm:read'], { password });
    for (let i = 0; i < 8; i++) {
      // A new password each time defeats the verified-credentials cache: each is a real verify.
      const fresh = recordSecret(`${password} ${i}`);
      const { hashPassword } = await import('../../lib/identity/passwords.ts');
      await rig.rt.db.orm.em.fork().execute('update app_user set password_hash = ? where id = ?', [await hashPassword(fresh), user.id], 'run');
      assert.equal(await guess(rig.base, user.email, fresh), 200, `login ${i + 1}`);
    }
  });

  test('across two instances on one PostgreSQL: 50 concurrent guesses split over both, at most 5 verifications', { skip: TEST_DB !== 'postgres' ? 'two instances share one database only on PostgreSQL (the embedded database serves one process)' : false }, async () => {
    const second: Runtime = await openRuntime(rig.rt.config, { command: 'test', log: createLogger({ level: 'warn', stream: new Writable({ write: (_c, _e, done) => done() }) }) });
    const server: Server = createHttpServer(second);
    const other = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
    try {
      const victim = await rig.person(['pm:read'], { password: 'two instances right 1' });
      const verified = passwordStats.verifications;
      const statuses = await Promise.all(Array.from({ length: 50 }, (_, i) => guess(i % 2 ? other : rig.base, victim.email, recordSecret(`split guess ${i} ${Math.random()}`))));
      assert.ok(passwordStats.verifications - verified <= 5, `${passwordStats.verifications - verified} passwords were verified`);
      assert.equal(count(statuses, 429), 50 - count(statuses, 401));
      assert.ok(count(statuses, 429) >= 45);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await second.close();
    }
  });
});

describe('finding 7: behind a proxy, the client cannot choose its address', () => {
  test('X-Forwarded-For entries the client wrote do not escape the per-IP limit', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      // Six accounts, so only the per-IP count can stop the sixth; the client forges the left entries.
      const spoofed = `${Math.floor(Math.random() * 200) + 1}.${i}.${i}.${i}, 203.0.113.77`;
      statuses.push(await guess(rig.base, `nobody-${i}-${Date.now()}@example.test`, recordSecret(`spoof ${i} ${Math.random()}`), { 'x-forwarded-for': spoofed }));
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  });

  test('the session records the address the trusted proxy saw, not the forged one', async () => {
    const person = await rig.person(['pm:read']);
    const response = await fetch(`${rig.base}/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${person.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-forwarded-for': '6.6.6.6, 198.51.100.23' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'spoofer', version: '1' } } }),
    });
    assert.equal(response.status, 200);
    await response.text();
    const [row] = await rig.rt.db.orm.em.fork().execute<{ client_address: string }[]>('select client_address from mcp_session where id = ?', [response.headers.get('mcp-session-id')]);
    assert.equal(row?.client_address, '198.51.100.23');
  });
});
