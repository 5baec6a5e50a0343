#!/usr/bin/env node
// The `mandate` command. Runs the TypeScript sources directly (Node >= 22.18 strips types) in a
// checkout, and the compiled JavaScript in dist/ where the sources are not shipped.
import { existsSync } from 'node:fs';
import module from 'node:module';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 17)) {
  process.stderr.write(`mandate: needs Node.js >= 22.17 (this is ${process.version}); run it through scripts/with-node22.sh\n`);
  process.exit(1);
}
// `mandate serve` runs with AsyncContextFrame, Node 24's default. MikroORM enters an
// AsyncLocalStorage on every flush. On Node 22 without the flag, that switches V8's promise hooks
// on for every promise of the process, which cost the server 14% of its CPU per request
// (bench/http.bench.ts). So a Node 22 server replaces itself, same pid, with the flag on.
if (process.argv[2] === 'serve' && asyncLocalStorageUsesPromiseHooks() && typeof process.execve === 'function') {
  const args = [process.execPath, '--experimental-async-context-frame', ...process.execArgv, ...process.argv.slice(1)];
  try {
    process.execve(process.execPath, args, process.env);
  } catch (error) {
    // Not fatal: the server only runs slower.
    process.stderr.write(`mandate: could not re-execute with --experimental-async-context-frame (${error.code ?? error.message}); continuing without it\n`);
  }
}
// Node's compile cache (in the OS temp dir) takes about 90 ms off each start of a stdio server.
module.enableCompileCache?.();
const source = new URL('../lib/cli.ts', import.meta.url);
const built = new URL('../dist/lib/cli.js', import.meta.url);
const entry = existsSync(source) ? source : built;
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));

/** True on Node 22 without --experimental-async-context-frame (its hook-based implementation has `_enable`). */
function asyncLocalStorageUsesPromiseHooks() {
  const { AsyncLocalStorage } = process.getBuiltinModule('node:async_hooks');
  return '_enable' in AsyncLocalStorage.prototype;
}
