#!/usr/bin/env node
// npm run bench: runs every bench/*.bench.ts in turn. Each compares against a baseline measured in
// the same run and prints ratios; none of them is a test and none fails on a number.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const only = process.argv[2];
// Run only when named (`npm run bench -- load`, `-- scale`): each takes many minutes (the
// load-and-fault harness restarts its database; the growth bench generates 10 million audit events).
const ON_REQUEST = ['load.bench.ts', 'scale.bench.ts'];
const files = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.bench.ts') && (only ? f.includes(only) : !ON_REQUEST.includes(f))).sort();
let failed = false;
for (const file of files) {
  process.stdout.write(`\n## ${file}\n`);
  const result = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', new URL(file, import.meta.url).pathname], { stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
