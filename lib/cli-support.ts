import type { ParseArgsConfig } from 'node:util';
import type { Config } from './config.ts';
import type { SystemCaller } from './identity/caller.ts';
import { openRuntime, type Runtime } from './runtime.ts';
import type { AnyOperation } from './ops/operation.ts';

/** A mistake in how the command was called: one line on stderr, exit 2. */
export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Command {
  usage: string;
  summary: string;
  options: Options;
  /** How many positional arguments it takes (default none). */
  positionals?: number;
  run(args: Record<string, unknown>, io: Io, positionals: string[]): Promise<number>;
}

export interface Io {
  out(line: string): void;
  /** Writes to stdout, resolving once the stream takes more (a long output streams, never piles up). */
  write(chunk: string): Promise<void>;
  err(line: string): void;
  config: Config;
  stdin: NodeJS.ReadableStream;
}

export const SYSTEM: SystemCaller = { kind: 'system', name: 'cli' };
export const help = { help: { type: 'boolean', short: 'h' } } as const satisfies Options;

export async function withRuntime<T>(io: Io, command: string, fn: (runtime: Runtime) => Promise<T>): Promise<T> {
  const runtime = await openRuntime(io.config, { command: `mandate ${command}`, defaultLogLevel: 'warn' });
  try {
    return await fn(runtime);
  } finally {
    await runtime.close();
  }
}

export async function runAsSystem<O>(runtime: Runtime, op: AnyOperation, input: unknown): Promise<O> {
  const result = await runtime.runner.run(op, SYSTEM, input);
  if (!result.ok) throw result.error;
  return result.value as O;
}

export function str(args: Record<string, unknown>, key: string): string | undefined {
  const value = args[key];
  return typeof value === 'string' ? value : undefined;
}

export function int(args: Record<string, unknown>, key: string): number | undefined {
  const value = str(args, key);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${key} must be a whole number`);
  return Number(value);
}

