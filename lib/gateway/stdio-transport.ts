import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

export interface StdioLaunch {
  command: string;
  args: readonly string[];
  /** The whole environment of the process: nothing of Mandate's own is inherited. */
  env: Record<string, string>;
  /** Each line the server writes to stderr. */
  onStderr(line: string): void;
}

// A server's stdout may not flood Mandate's memory: one message at most this large.
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const KILL_AFTER_MS = 2000;

/**
 * The client side of a stdio MCP server, started without a shell, with exactly the environment it
 * is given (the SDK's own transport adds HOME, USER, SHELL and more of the parent's), in a process
 * group of its own so stopping it stops what it started.
 */
export class IsolatedStdioTransport implements Transport {
  private readonly launch: StdioLaunch;
  private child: ChildProcess | null = null;
  private readonly buffer = new ReadBuffer({ maxBufferSize: MAX_MESSAGE_BYTES });
  private exited: Promise<void> = Promise.resolve();
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  constructor(launch: StdioLaunch) {
    this.launch = launch;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.launch.command, [...this.launch.args], {
        env: this.launch.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        detached: true,
        windowsHide: true,
      });
      this.child = child;
      this.exited = new Promise((done) => child.once('close', () => done()));
      child.once('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.once('spawn', () => resolve());
      child.once('close', () => {
        this.child = null;
        this.onclose?.();
      });
      child.stdout!.on('data', (chunk: Buffer) => {
        try {
          this.buffer.append(chunk);
          for (let message = this.buffer.readMessage(); message; message = this.buffer.readMessage()) this.onmessage?.(message);
        } catch (error) {
          this.onerror?.(error as Error);
          void this.close();
        }
      });
      child.stdin!.on('error', (error) => this.onerror?.(error));
      createInterface({ input: child.stderr! }).on('line', (line) => this.launch.onStderr(line));
    });
  }

  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.child?.stdin;
      if (!stdin || stdin.destroyed) return reject(new Error('the server process has exited'));
      if (stdin.write(serializeMessage(message))) resolve();
      else stdin.once('drain', () => resolve());
    });
  }

  /** Ends stdin, then SIGTERM, then SIGKILL: to the whole process group. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    child.stdin?.end();
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, name);
      } catch {
        // gone already
      }
    };
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), KILL_AFTER_MS);
    await this.exited;
    clearTimeout(timer);
    this.buffer.clear();
  }
}
