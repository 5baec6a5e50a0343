import { realpathSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

/** Serves the named MCP servers over stdio when `moduleUrl` is the script Node was started with. */
export async function runIfMain(moduleUrl: string, servers: string[]): Promise<void> {
  const entry = process.argv[1];
  if (!entry || realpathSync(entry) !== realpathSync(fileURLToPath(moduleUrl))) return;
  // The compile cache still helps everything loaded from here on (SDK, database driver).
  module.enableCompileCache?.();
  const { serveStdio } = await import('./stdio.ts');
  await serveStdio({ servers });
}
