import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MIGRATIONS } from '../lib/db/migrations/index.ts';
import { createPostgresDatabase, TEST_DB } from './helpers/db.ts';
import { ROOT } from './helpers/stdio.ts';

// mikro-orm.config.ts: the MikroORM CLI opens Mandate's database as the servers do, on the database
// the environment names. Node runs the TypeScript config itself; the CLI only has to be told to
// prefer it (MIKRO_ORM_CLI_PREFER_TS, which `npm run orm` sets).

async function cli(env: Record<string, string>, ...args: string[]) {
  const run = promisify(execFile);
  try {
    const { stdout, stderr } = await run(join(ROOT, 'node_modules', '.bin', 'mikro-orm'), args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', MIKRO_ORM_CLI_PREFER_TS: 'true', MANDATE_LOG_LEVEL: 'warn', ...env },
      timeout: 120_000,
    });
    return { code: 0, output: `${stdout}${stderr}` };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

test(`npx mikro-orm migration:list, migration:up, migration:check and debug work on ${TEST_DB}`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-orm-cli-'));
  const env: Record<string, string> = TEST_DB === 'postgres' ? { DATABASE_URL: await createPostgresDatabase() } : { MANDATE_DATA_DIR: dir };
  try {
    const pending = await cli(env, 'migration:pending');
    assert.equal(pending.code, 0, pending.output);
    for (const { name } of MIGRATIONS) assert.ok(pending.output.includes(name), `${name} is pending on a fresh database:\n${pending.output}`);
    const check = await cli(env, 'migration:check');
    assert.notEqual(check.code, 0, 'a fresh database needs migrations, and the check says so');
    const up = await cli(env, 'migration:up');
    assert.equal(up.code, 0, up.output);
    const list = await cli(env, 'migration:list');
    for (const { name } of MIGRATIONS) assert.ok(list.output.includes(name), `${name} is listed as executed:\n${list.output}`);
    const clean = await cli(env, 'migration:check');
    assert.equal(clean.code, 0, clean.output);
    assert.match(clean.output, /No changes required, schema is up-to-date/);
    const debug = await cli(env, 'debug');
    assert.equal(debug.code, 0, debug.output);
    assert.match(debug.output, /mikro-orm\.config\.ts/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
