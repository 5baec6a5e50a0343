import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keepArtifact } from './db.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANDATE_BIN = join(ROOT, 'bin/mandate.js');

export interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a process to its end in the repository root with only the given environment (plus PATH
 * and HOME). Its stderr is kept for the secret sweep; stdout may carry a token by design (shown
 * once), so it is not.
 */
export function runProcess(command: string, args: string[], env: Record<string, string>, stdin = '', artifact = 'process-stderr'): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, command === process.execPath ? ['--disable-warning=ExperimentalWarning', ...args] : args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      cwd: ROOT,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      keepArtifact(artifact, stderr);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin);
  });
}

/** Runs `mandate ...` in a child process. */
export function mandate(args: string[], env: Record<string, string>, stdin?: string): Promise<ProcessResult> {
  return runProcess(process.execPath, [MANDATE_BIN, ...args], env, stdin, 'cli-stderr');
}

export const lines = (text: string) => text.split('\n').filter((line) => line.length > 0);
