import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

// PGlite serves one process at a time and a second writer would corrupt the data directory, so the
// directory is claimed with a lock file created exclusively (O_EXCL) before PGlite opens it.

export interface LockHolder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export class EmbeddedDatabaseBusyError extends Error {
  readonly holder: LockHolder;
  constructor(dataDir: string, holder: LockHolder) {
    super(
      `the embedded database in ${dataDir} is in use by process ${holder.pid} (${holder.command}) since ${holder.since}; ` +
        'PGlite serves one process at a time: stop that process, run all toolsets in it (entrypoint.sh serve), ' +
        'point this one at it with MANDATE_URL (remote mode), or use PostgreSQL via DATABASE_URL',
    );
    this.holder = holder;
  }
}

export interface EmbeddedLock {
  release(): void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return undefined; // being written right now, or garbage: treated as held below
  }
}

export function acquireEmbeddedLock(dataDir: string, command: string): EmbeddedLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'mandate.lock');
  const me: LockHolder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        const holder = readHolder(path);
        if (holder?.pid === process.pid) rmSync(path, { force: true });
        process.off('exit', release);
      };
      process.on('exit', release);
      return { release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(path);
      const stale = holder && holder.host === me.host && !isAlive(holder.pid);
      if (!stale) {
        throw new EmbeddedDatabaseBusyError(
          dataDir,
          holder ?? { pid: 0, host: me.host, command: 'unknown (lock file unreadable)', since: 'unknown' },
        );
      }
      rmSync(path, { force: true }); // the holder died without cleaning up
    }
  }
  throw new Error(`could not claim the embedded database lock in ${dataDir}`);
}
