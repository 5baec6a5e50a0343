import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { keepArtifact } from './db.ts';

export const MANDATE_BIN = fileURLToPath(new URL('../../bin/mandate.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `mandate ...` in a child process with only the given environment (plus PATH/HOME). */
export function mandate(args: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MANDATE_BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      // stdout may carry a token by design (shown once); logs and errors go to stderr and are swept.
      keepArtifact('cli-stderr', stderr);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(stdin ?? '');
  });
}

export const lines = (text: string) => text.split('\n').filter((line) => line.length > 0);
