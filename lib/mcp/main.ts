import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Toolset } from './toolset.ts';

/** Serves the toolsets over stdio when `moduleUrl` is the script Node was started with. */
export async function runIfMain(moduleUrl: string, toolsets: Toolset[]): Promise<void> {
  const entry = process.argv[1];
  if (!entry || realpathSync(entry) !== realpathSync(fileURLToPath(moduleUrl))) return;
  const { serveStdio } = await import('./stdio.ts');
  await serveStdio({ toolsets });
}
