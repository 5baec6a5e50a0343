import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSecret, keepArtifact } from './helpers/db.ts';
import { MANDATE_BIN, lines, mandate } from './helpers/cli.ts';

// The embedded database serves one process. This is about PGlite, so it runs in both passes.
const dataDir = mkdtempSync(join(tmpdir(), 'mandate-lock-'));
const env = { MANDATE_DATA_DIR: dataDir };
let holder: ChildProcess | undefined;
after(() => {
  holder?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

function startServer(): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MANDATE_BIN, 'serve', '--port', '0'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d) => {
      stderr += d;
      const match = /listening on (http:\/\/[^\s]+)/.exec(stderr);
      if (match) resolve({ child, url: match[1]! });
    });
    child.on('close', (code) => {
      keepArtifact('serve-stderr', stderr);
      reject(new Error(`serve exited early (${code}): ${stderr}`));
    });
  });
}

test('a second process on the same data directory gets a one-line error naming the holder; the data stays intact', async () => {
  const password = recordSecret('lock-test-admin-password');
  const init = await mandate(['init', '--admin-email', 'lock@example.test', '--admin-password', password], env);
  assert.equal(init.code, 0, init.stderr);
  recordSecret(lines(init.stdout).at(-1)!);

  const server = await startServer();
  holder = server.child;
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  assert.equal(((await health.json()) as { status: string }).status, 'ok');
  const ready = await fetch(`${server.url}/ready`);
  assert.deepEqual(await ready.json(), { status: 'ready', database: 'embedded' });
  const missing = await fetch(`${server.url}/nope`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');

  for (const args of [['migrate'], ['user', 'create', '--email', 'intruder@example.test']]) {
    const second = await mandate(args, env);
    assert.equal(second.code, 1);
    const errLines = lines(second.stderr);
    assert.equal(errLines.length, 1, `one line, got ${JSON.stringify(second.stderr)}`);
    assert.match(errLines[0]!, new RegExp(`in use by process ${holder.pid} \\(mandate serve\\)`));
    assert.match(errLines[0]!, /PostgreSQL via DATABASE_URL/);
    assert.match(errLines[0]!, /MANDATE_URL \(remote mode\)/);
  }

  const exited = new Promise<number | null>((resolve) => holder!.once('exit', resolve));
  holder.kill('SIGTERM');
  assert.equal(await exited, 0, 'the holder shuts down cleanly');
  assert.equal(existsSync(join(dataDir, 'mandate.lock')), false, 'and releases the lock');

  const again = await mandate(['init', '--admin-email', 'lock@example.test', '--admin-password', password], env);
  assert.equal(again.code, 0);
  assert.match(again.stdout, /admin lock@example.test exists/, 'the data written before is intact');
  const created = await mandate(['user', 'create', '--email', 'after@example.test'], env);
  assert.equal(created.code, 0, created.stderr);
  const intruder = await mandate(['user', 'create', '--email', 'intruder@example.test'], env);
  assert.equal(intruder.code, 0, 'the refused create above wrote nothing');
});

test('a lock left by a dead process is taken over', async () => {
  writeFileSync(join(dataDir, 'mandate.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), command: 'mandate serve', since: 'earlier' }));
  const result = await mandate(['migrate'], env);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /up to date/);
});
