import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// A throwaway PostgreSQL cluster for tests: initdb + pg_ctl from `pg_config --bindir`, on a free
// loopback port, as a non-root user (PostgreSQL refuses to run as root).

export interface Cluster {
  url: string;
  port: number;
  stop(): void;
  /** Stops the server (fast shutdown: connections are cut), keeping its data; `resume` starts it again on the same port. */
  halt(): void;
  resume(): void;
  /** Freezes the server's processes (SIGSTOP): it accepts nothing and answers nothing, like a hung host; `thaw` undoes it. */
  freeze(): void;
  thaw(): void;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      // try the next one
    }
  }
  throw new Error('running as root and found neither a "postgres" nor a "nobody" user to run PostgreSQL as');
}

export async function startCluster(): Promise<Cluster> {
  const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pg-'));
  const owner = runAs();
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const options = { stdio: 'pipe' as const, encoding: 'utf8' as const, ...(owner ?? {}), env: { ...process.env, LC_ALL: 'C' } };
  const run = (bin: string, args: string[]) => {
    const result = spawnSync(join(bindir, bin), args, options);
    if (result.status !== 0) {
      let log = '';
      try {
        log = readFileSync(join(dir, 'server.log'), 'utf8');
      } catch {
        // no server log yet
      }
      throw new Error(`${bin} failed (${result.status}): ${result.stderr || result.stdout}${log}`);
    }
  };
  run('initdb', ['-D', data, '-U', 'mandate', '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync']);
  let port = 0;
  const start = () =>
    run('pg_ctl', [
      '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60',
      '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`,
      'start',
    ]);
  for (let attempt = 0; attempt < 5; attempt++) {
    port = await freePort();
    try {
      start();
      break;
    } catch (error) {
      if (attempt === 4) throw error;
    }
  }
  const postmasterPid = () => Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  // The postmaster and every backend it forked: SIGSTOP to the postmaster alone leaves open connections answering.
  const serverPids = () => {
    const parent = postmasterPid();
    const children = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
      try {
        return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]) === parent;
      } catch {
        return false; // gone meanwhile
      }
    }).map(Number);
    return [parent, ...children];
  };
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    spawnSync(join(bindir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], options);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    url: `postgres://mandate@127.0.0.1:${port}/postgres`,
    port,
    stop,
    halt: () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']),
    resume: start,
    freeze: () => serverPids().forEach((pid) => process.kill(pid, 'SIGSTOP')),
    thaw: () => serverPids().forEach((pid) => process.kill(pid, 'SIGCONT')),
  };
}
