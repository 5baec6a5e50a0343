import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { makeToken, makeUser, update } from './helpers/fixtures.ts';
import { authenticatePassword, authenticateToken } from '../lib/identity/authenticate.ts';
import { generateApiToken, hashApiToken, looksLikeApiToken } from '../lib/identity/tokens.ts';
import { hashPassword, passwordSchema, passwordStats, verifyPassword } from '../lib/identity/passwords.ts';
import { OpError } from '../lib/errors.ts';

let rt: TestRuntime;
before(async () => {
  rt = await testRuntime();
});
after(() => rt.close());

const em = () => rt.db.orm.em.fork();

test('API tokens: mnd_ + 32 random bytes (base64url), SHA-256 at rest, a recognisable prefix', () => {
  const a = generateApiToken();
  const b = generateApiToken();
  assert.match(a.raw, /^mnd_[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(a.raw.slice(4), 'base64url').length, 32);
  assert.notEqual(a.raw, b.raw);
  assert.equal(a.hash, hashApiToken(a.raw));
  assert.match(a.hash, /^[0-9a-f]{64}$/);
  assert.ok(a.raw.startsWith(a.prefix) && a.prefix.length < 16);
  assert.ok(looksLikeApiToken(a.raw));
  assert.ok(!looksLikeApiToken(`${a.raw}x`) && !looksLikeApiToken('mnd_short'));
});

test('a token resolves to its user; last-used is recorded (at most once a minute)', async () => {
  const u = await makeUser(rt, { roles: ['viewer'] });
  const { token, raw } = await makeToken(rt, u);
  recordSecret(raw);
  const caller = await authenticateToken(em(), raw);
  assert.deepEqual({ userId: caller.userId, tokenId: caller.tokenId, email: caller.email }, { userId: u.id, tokenId: token.id, email: u.email });
  const first = (await em().execute('select last_used_at from api_token where id = ?', [token.id], 'get')) as { last_used_at: Date };
  assert.ok(first.last_used_at, 'last_used_at set');
  await authenticateToken(em(), raw);
  const second = (await em().execute('select last_used_at from api_token where id = ?', [token.id], 'get')) as { last_used_at: Date };
  assert.equal(new Date(second.last_used_at).getTime(), new Date(first.last_used_at).getTime(), 'not rewritten within a minute');
});

test('unknown, revoked and expired tokens, and tokens of disabled users, are refused alike', async () => {
  const u = await makeUser(rt, { roles: ['viewer'] });
  const revoked = await makeToken(rt, u);
  const expired = await makeToken(rt, u, { expiresAt: new Date(Date.now() - 1000) });
  const v = await makeUser(rt, { roles: ['viewer'] });
  const disabled = await makeToken(rt, v);
  await update(rt, 'update api_token set revoked_at = now() where id = ?', [revoked.token.id]);
  await update(rt, 'update app_user set active = false where id = ?', [v.id]);
  const unknown = generateApiToken().raw;
  for (const raw of [revoked.raw, expired.raw, disabled.raw, unknown, 'not-a-token']) {
    if (raw.startsWith('mnd_')) recordSecret(raw);
    await assert.rejects(authenticateToken(em(), raw), (error: unknown) => error instanceof OpError && error.code === 'unauthenticated' && error.message === 'invalid or expired credentials');
  }
});

test('passwords: 8 to 1024 characters', () => {
  assert.equal(passwordSchema.safeParse('1234567').success, false);
  assert.equal(passwordSchema.safeParse('12345678').success, true);
  assert.equal(passwordSchema.safeParse('x'.repeat(1024)).success, true);
  assert.equal(passwordSchema.safeParse('x'.repeat(1025)).success, false);
});

test('argon2id hashes; right password verifies, wrong one does not', async () => {
  const password = recordSecret('argon-test-password');
  const hash = await hashPassword(password);
  assert.match(hash, /^\$argon2id\$/);
  assert.ok(!hash.includes(password));
  assert.equal(await verifyPassword(hash, password), true);
  assert.equal(await verifyPassword(hash, 'wrong-password'), false);
  assert.equal(await verifyPassword('garbage', password), false, 'a malformed hash is a failure, not a crash');
});

test('password login: an unknown user still costs exactly one verify; all failures look alike', async () => {
  const password = recordSecret('login-test-password');
  const u = await makeUser(rt, { roles: ['viewer'] });
  await update(rt, 'update app_user set password_hash = ? where id = ?', [await hashPassword(password), u.id]);
  const ok = await authenticatePassword(em(), u.email.toUpperCase(), password);
  assert.equal(ok.userId, u.id);

  for (const [email, pw] of [['nobody@example.test', password], [u.email, 'wrong-password']] as const) {
    const before = passwordStats.verifications;
    const started = performance.now();
    await assert.rejects(authenticatePassword(em(), email, pw), /invalid or expired credentials/);
    assert.equal(passwordStats.verifications - before, 1, `${email}: one verify`);
    assert.ok(performance.now() - started > 5, 'a real argon2 verify ran');
  }
  await update(rt, 'update app_user set active = false where id = ?', [u.id]);
  await assert.rejects(authenticatePassword(em(), u.email, password), /invalid or expired credentials/);
});
