#!/usr/bin/env node
// npm run bench: runs every bench/*.bench.ts in turn. Each compares against a baseline measured in
// the same run and prints ratios; none of them is a test and none fails on a number.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const only = process.argv[2];
const files = readdirSync(new URL('.', import.meta.url)).filter((f) => f.endsWith('.bench.ts') && (!only || f.includes(only))).sort();
let failed = false;
for (const file of files) {
  process.stdout.write(`\n## ${file}\n`);
  const result = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', new URL(file, import.meta.url).pathname], { stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
