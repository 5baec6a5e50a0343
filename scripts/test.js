#!/usr/bin/env node
// The test command (npm test): runs the whole suite on the embedded database (PGlite) and on a
// real PostgreSQL cluster started here, then sweeps every log and audit row the suite produced for
// the secrets it used. Exits non-zero if any pass fails.
//   npm test                 both databases
//   npm test -- pglite       only the embedded database
//   npm test -- postgres     only PostgreSQL
//   npm test -- postgres test/resolver.test.ts   some files only
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const passes = args.filter((a) => a === 'pglite' || a === 'postgres');
const files = args.filter((a) => a.endsWith('.ts'));
const databases = passes.length ? passes : ['pglite', 'postgres'];
const artifacts = mkdtempSync(join(tmpdir(), 'mandate-test-artifacts-'));
const reports = mkdtempSync(join(tmpdir(), 'mandate-test-reports-'));

const totals = { passed: 0, failed: 0 };
let run = 0;

// Spec output for people, TAP into a file for the totals printed at the end.
function nodeTest(env, testFiles) {
  const tap = join(reports, `tap-${run++}.txt`);
  const result = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, '--disable-warning=ExperimentalWarning', ...testFiles],
    { stdio: 'inherit', env: { ...process.env, ...env, MANDATE_TEST_ARTIFACTS: artifacts, MANDATE_VERIFY_OPERATIONS: '1' } },
  );
  try {
    const text = readFileSync(tap, 'utf8');
    totals.passed += Number(/^# pass (\d+)$/m.exec(text)?.[1] ?? 0);
    totals.failed += Number(/^# fail (\d+)$/m.exec(text)?.[1] ?? 0);
  } catch {
    totals.failed += 1; // the runner did not even report
  }
  rmSync(tap, { force: true });
  return result.status === 0;
}

let cluster;
const failed = [];
try {
  if (databases.includes('postgres') || !process.env.MANDATE_TEST_PG_URL) {
    const { startCluster } = await import('../test/helpers/pg-cluster.ts');
    cluster = await startCluster();
    process.stdout.write(`\n# throwaway PostgreSQL cluster on 127.0.0.1:${cluster.port}\n`);
  }
  const pgUrl = process.env.MANDATE_TEST_PG_URL ?? cluster.url;
  for (const db of databases) {
    process.stdout.write(`\n# test pass: ${db === 'pglite' ? 'embedded PGlite' : 'PostgreSQL'}\n`);
    const ok = nodeTest({ MANDATE_TEST_DB: db, MANDATE_TEST_PG_URL: pgUrl }, files.length ? files : ['test/**/*.test.ts']);
    if (!ok) failed.push(db);
  }
  if (!files.length) {
    process.stdout.write('\n# secret sweep over every log and audit row of the passes above\n');
    if (!nodeTest({}, ['test/sweep/secrets.sweep.ts'])) failed.push('secret sweep');
  }
} finally {
  cluster?.stop();
  rmSync(artifacts, { recursive: true, force: true });
  rmSync(reports, { recursive: true, force: true });
}
process.stdout.write(`\ntotal: ${totals.passed} passed, ${totals.failed} failed\n`);
if (failed.length || totals.passed === 0) {
  process.stdout.write(`# FAILED: ${failed.join(', ') || 'no test ran'}\n`);
  process.exit(1);
}
process.stdout.write(`# all passes green: ${databases.join(', ')}\n`);
