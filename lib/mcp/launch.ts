import { serveStdio } from './stdio.ts';

/** Serves the named servers over stdio in this process (names are checked by the callers). */
export async function launchServers(names: string[], readOnly = false): Promise<void> {
  await serveStdio({ servers: names, readOnly });
}
