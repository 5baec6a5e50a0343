import { SERVERS } from './servers.ts';
import { serveStdio } from './stdio.ts';

/** Serves the named servers over stdio in this process (names are checked by the callers). */
export async function launchServers(names: string[], readOnly = false): Promise<void> {
  await serveStdio({ toolsets: names.map((name) => SERVERS[name]!), readOnly });
}
