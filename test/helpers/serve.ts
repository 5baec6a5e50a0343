import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { keepArtifact } from './db.ts';
import { ROOT } from './stdio.ts';

export interface ServeProcess {
  url: string;
  pid: number;
  logs(): string;
  stop(): Promise<void>;
  /** Sends a signal (SIGKILL, SIGTERM) without waiting. */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts `mandate serve` on a free port and waits until it listens; `nodeArgs` go to node (e.g. --import a fixture). */
export async function startServe(env: Record<string, string>, port = 0, nodeArgs: string[] = []): Promise<ServeProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', ...nodeArgs, 'bin/mandate.js', 'serve', '--port', String(port)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout!.on('data', (d) => (logs += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mandate serve did not start:\n${logs}`)), 30_000);
    createInterface({ input: child.stderr! }).on('line', (line) => {
      logs += `${line}\n`;
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`mandate serve exited with ${code}:\n${logs}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then(() => keepArtifact('serve', logs));
  return {
    url,
    pid: child.pid!,
    logs: () => logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    signal: (signal) => void child.kill(signal),
    exited,
  };
}
