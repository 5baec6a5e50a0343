import { spawn, type ChildProcess } from 'node:child_process';
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
/** Longer than a stderr line is cut (it goes to the log). */
const MAX_STDERR_LINE = 8192;

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
  private lastPid: number | undefined;
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
      this.lastPid = child.pid;
      // 'exit', not 'close': a descendant holding the pipes open must not keep a stop waiting.
      this.exited = new Promise((done) => child.once('exit', () => done()));
      child.once('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.once('spawn', () => resolve());
      child.once('exit', () => {
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
      // Lines, each cut at MAX_STDERR_LINE: a server writing without newlines cannot grow this buffer.
      let pending = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (chunk: string) => {
        const lines = (pending + chunk).split('\n');
        pending = lines.pop()!.slice(0, MAX_STDERR_LINE);
        for (const line of lines) this.launch.onStderr(line.slice(0, MAX_STDERR_LINE));
      });
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

  /**
   * Ends stdin, then SIGTERM, then SIGKILL after a grace period: to the whole process group, even
   * when its leader has exited already (what it started may not have).
   */
  async close(): Promise<void> {
    const pid = this.pid ?? this.lastPid;
    if (!pid) return;
    const child = this.child;
    child?.stdin?.end();
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // gone already
      }
    };
    signal('SIGTERM');
    await Promise.race([this.exited, new Promise((resolve) => setTimeout(resolve, KILL_AFTER_MS).unref())]);
    signal('SIGKILL');
    for (const stream of [child?.stdin, child?.stdout, child?.stderr]) stream?.destroy();
    this.lastPid = undefined;
    this.buffer.clear();
  }
}
