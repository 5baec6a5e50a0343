import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_DB, createPostgresDatabase, recordSecret } from './helpers/db.ts';
import { lines, mandate } from './helpers/cli.ts';
import { loadConfig } from '../lib/config.ts';
import { openRuntime } from '../lib/runtime.ts';
import { authenticateToken } from '../lib/identity/authenticate.ts';
import { createLogger } from '../lib/log.ts';

const dirs: string[] = [];
async function freshEnv(): Promise<Record<string, string>> {
  if (TEST_DB === 'postgres') return { DATABASE_URL: await createPostgresDatabase() };
  const dir = mkdtempSync(join(tmpdir(), 'mandate-cli-'));
  dirs.push(dir);
  return { MANDATE_DATA_DIR: dir };
}
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Opens the database the CLI wrote (after it exited) and checks what a token can do. */
async function permissionsOfToken(env: Record<string, string>, raw: string) {
  const runtime = await openRuntime(loadConfig(env), { command: 'test', log: createLogger({ level: 'silent' }) });
  try {
    const em = runtime.db.orm.em.fork();
    const caller = await authenticateToken(em, raw);
    const effective = await runtime.resolver.resolve(em, caller);
    return { email: caller.email, permissions: [...effective.grants.keys()] };
  } finally {
    await runtime.close();
  }
}

test('mandate vault new-key prints a key line that MANDATE_VAULT_KEY accepts; reseal re-encrypts onto it', async () => {
  const made = await mandate(['vault', 'new-key', '--id', 'k2'], {});
  assert.equal(made.code, 0);
  const line = made.stdout.trim();
  assert.match(line, /^k2:[A-Za-z0-9+/]{43}=$/);
  recordSecret(line.slice(3));
  const env = await freshEnv();
  const resealed = await mandate(['vault', 'reseal'], { ...env, MANDATE_VAULT_KEY: line });
  assert.equal(resealed.code, 0, resealed.stderr);
  assert.match(resealed.stdout, /re-sealed 0 secret\(s\) of 0 installation\(s\) with vault key "k2"/);
});

describe('mandate --help and bad arguments', () => {
  test('--help works on every command and lists them', async () => {
    const top = await mandate(['--help'], {});
    assert.equal(top.code, 0);
    for (const name of ['init', 'migrate', 'serve', 'user create', 'token create', 'vault new-key', 'vault reseal', 'project create', 'project list']) {
      assert.ok(top.stdout.includes(name), `top help lists ${name}`);
      const help = await mandate([...name.split(' '), '--help'], {});
      assert.equal(help.code, 0, `${name} --help exits 0`);
      assert.match(help.stdout, new RegExp(`^mandate ${name}`), `${name} --help shows its usage`);
      assert.match(help.stdout, /Options:/);
    }
  });

  test('bad arguments: one line on stderr, non-zero exit, no stack trace', async () => {
    const env = await freshEnv();
    const cases: [string[], number, RegExp][] = [
      [[], 2, /^$/],
      [['frobnicate'], 2, /unknown command "frobnicate"/],
      [['user'], 2, /"user" needs a subcommand: create/],
      [['user', 'create', '--bogus'], 2, /Unknown option '--bogus'/],
      [['user', 'create'], 2, /--email is required/],
      [['user', 'create', 'extra'], 2, /unexpected argument "extra"/],
      [['token', 'create', '--user', 'x@example.test'], 2, /--name is required/],
      [['token', 'create', '--user', 'x@example.test', '--name', 'n', '--expires-days', 'soon'], 2, /--expires-days must be a whole number/],
      [['init', '--admin-email', 'a@example.test'], 2, /give both the admin email and password/],
      [['user', 'create', '--email', 'not-an-email'], 1, /invalid input: email: must be an email address/],
      [['user', 'create', '--email', 'short@example.test', '--password', 'short'], 1, /password: must be at least 8 characters/],
      [['token', 'create', '--user', 'ghost@example.test', '--name', 'n'], 1, /user ghost@example.test not found/],
      [['serve', '--port', '70000'], 2, /--port must be at most 65535/],
      [['vault', 'new-key', '--id', 'no spaces'], 2, /--id must be 1-32 letters/],
      [['vault'], 2, /"vault" needs a subcommand: new-key, reseal/],
      [['project', 'create', '--name', 'n'], 2, /--key is required/],
      [['project', 'create', '--key', '9 bad', '--name', 'n'], 1, /key: must be a project key/],
    ];
    for (const [args, code, pattern] of cases) {
      const result = await mandate(args, env);
      assert.equal(result.code, code, `mandate ${args.join(' ')} exits ${code}`);
      const errLines = lines(result.stderr);
      if (args.length) {
        assert.equal(errLines.length, 1, `mandate ${args.join(' ')}: exactly one line on stderr, got ${JSON.stringify(result.stderr)}`);
        assert.match(errLines[0]!, pattern);
        assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
      }
    }
  });

  test('a bad environment variable is one clear line', async () => {
    const result = await mandate(['migrate'], { DATABASE_URL: 'mysql://nope' });
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), ['mandate migrate: invalid environment variable DATABASE_URL: must be a postgres:// or postgresql:// URL']);
  });
});

describe('mandate init, user create, token create', () => {
  let env: Record<string, string>;
  const password = recordSecret('first-admin-Password-1');
  let adminToken = '';

  before(async () => {
    env = await freshEnv();
  });

  test('init creates the database and the first admin, and prints its token alone on the last line', async () => {
    const result = await mandate(['init', '--admin-email', 'Root@Example.test', '--admin-password', password], env);
    assert.equal(result.code, 0, result.stderr);
    const out = lines(result.stdout);
    adminToken = recordSecret(out.at(-1)!);
    assert.match(adminToken, /^mnd_[A-Za-z0-9_-]{43}$/);
    assert.ok(out.slice(0, -1).every((line) => !line.includes('mnd_')), 'the token appears once');
    assert.match(result.stdout, /created admin root@example.test/);
    const who = await permissionsOfToken(env, adminToken);
    assert.equal(who.email, 'root@example.test');
    assert.ok(who.permissions.includes('users:write') && who.permissions.includes('audit:read'));
  });

  test('init again is safe: says the admin exists, prints no token', async () => {
    const result = await mandate(['init', '--admin-email', 'root@example.test', '--admin-password', password], env);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /admin root@example.test exists/);
    assert.doesNotMatch(result.stdout, /mnd_/);
    const other = await mandate(['init'], { ...env, MANDATE_ADMIN_EMAIL: 'second@example.test', MANDATE_ADMIN_PASSWORD: password });
    assert.equal(other.code, 0);
    assert.match(other.stdout, /an admin exists already \(root@example.test\); not creating second@example.test/);
  });

  test('user create (password from stdin) and token create with scopes', async () => {
    const userPassword = recordSecret('dev-user-Password-9');
    const created = await mandate(['user', 'create', '--email', 'dev@example.test', '--display-name', 'Dev One', '--role', 'developer', '--password-stdin'], env, `${userPassword}\n`);
    assert.equal(created.code, 0, created.stderr);
    const user = JSON.parse(created.stdout) as { id: string; email: string; roles: string[]; display_name: string };
    assert.deepEqual([user.email, user.display_name, user.roles], ['dev@example.test', 'Dev One', ['developer']]);
    assert.doesNotMatch(created.stdout, /password/i);

    const token = await mandate(['token', 'create', '--user', 'dev@example.test', '--name', 'laptop', '--expires-days', '30', '--scope', 'pm:read'], env);
    assert.equal(token.code, 0, token.stderr);
    const raw = recordSecret(lines(token.stdout).at(-1)!);
    assert.deepEqual(await permissionsOfToken(env, raw), { email: 'dev@example.test', permissions: ['pm:read'] });

    const beyond = await mandate(['token', 'create', '--user', user.id, '--name', 'x', '--scope', 'users:write'], env);
    assert.equal(beyond.code, 1);
    assert.match(beyond.stderr, /scopes: the user does not hold users:write/);
  });

  test('project create and project list: the projects roles are scoped to, as JSON; a taken key is a conflict', async () => {
    const created = await mandate(['project', 'create', '--key', 'acme', '--name', 'Acme Corp'], env);
    assert.equal(created.code, 0, created.stderr);
    const project = JSON.parse(created.stdout);
    assert.equal(project.key, 'ACME');
    assert.equal(project.name, 'Acme Corp');
    const again = await mandate(['project', 'create', '--key', 'ACME', '--name', 'again'], env);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /a project with key ACME exists already/);
    const listed = await mandate(['project', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).map((p: { key: string; id: string }) => [p.key, p.id]), [['ACME', project.id]]);
  });

  test('migrate on an up-to-date database says so', async () => {
    const result = await mandate(['migrate'], env);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /the database is up to date/);
  });

  test('nothing the CLI logged contains the passwords or tokens', async () => {
    // Each call above kept its stderr for the suite's sweep; this checks the obvious one directly.
    const result = await mandate(['user', 'create', '--email', 'dev@example.test', '--password', password], env);
    assert.equal(result.code, 1);
    assert.ok(!result.stderr.includes(password));
    assert.ok(adminToken.length > 0);
  });
});
