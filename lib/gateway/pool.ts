import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { OpError } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { NetworkPolicy } from '../pm/net-guard.ts';
import { scrubText, scrubValue } from '../redact.ts';
import { VERSION } from '../version.ts';
import type { UpstreamTool } from './definition.ts';
import { ForbiddenUpstreamError, guardedStreamFetch } from './guarded-stream-fetch.ts';
import { IsolatedStdioTransport } from './stdio-transport.ts';
import { clientReport, SILENT_REPORT } from '../report.ts';

export interface GatewaySettings {
  /** A session nobody used for this long is closed (its process stopped). */
  idleMs: number;
  startTimeoutMs: number;
  callTimeoutMs: number;
  /** The largest upstream result passed on (its JSON). */
  maxResultBytes: number;
  /** stdio processes at once: per user, and in all. */
  maxProcessesPerUser: number;
  maxProcesses: number;
  /** How often running sessions are checked against the database (removed, deactivated, changed). */
  sweepMs: number;
  /** Where remote MCP servers may be (the trackers' SSRF guard). */
  policy: NetworkPolicy;
}

/** One caller's use of one installation: what to start or connect to, with its secrets filled in. */
export interface UpstreamTarget {
  userId: string;
  installationId: string;
  /** Changes when the installation or its catalog entry does: a session of an older version is replaced. */
  version: string;
  label: string;
  transport: 'remote' | 'stdio';
  url?: string;
  headers?: Record<string, string>;
  command?: string;
  args?: readonly string[];
  env?: Record<string, string>;
  /** The installation's secret values: scrubbed from everything the server says. */
  secrets: readonly string[];
}

export interface RunningSession {
  userId: string;
  installationId: string;
  version: string;
  transport: 'remote' | 'stdio';
  pid: number | null;
}

// The SDK's client is loaded on the first upstream session: a process that never uses the gateway
// (most stdio servers) does not pay for importing it.
let clientModules: Promise<{
  Client: typeof import('@modelcontextprotocol/sdk/client/index.js').Client;
  StreamableHTTPClientTransport: typeof import('@modelcontextprotocol/sdk/client/streamableHttp.js').StreamableHTTPClientTransport;
  ToolListChangedNotificationSchema: typeof import('@modelcontextprotocol/sdk/types.js').ToolListChangedNotificationSchema;
}> | undefined;
const loadClient = () =>
  (clientModules ??= Promise.all([
    import('@modelcontextprotocol/sdk/client/index.js'),
    import('@modelcontextprotocol/sdk/client/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
  ]).then(([client, http, types]) => ({ Client: client.Client, StreamableHTTPClientTransport: http.StreamableHTTPClientTransport, ToolListChangedNotificationSchema: types.ToolListChangedNotificationSchema })));

const keyOf = (target: Pick<UpstreamTarget, 'userId' | 'installationId'>) => `${target.userId}:${target.installationId}`;
const MAX_STDERR_LINES = 1000;
const MAX_STDERR_LINE = 2000;
const MAX_LIST_PAGES = 20;

interface Entry {
  target: UpstreamTarget;
  ready: Promise<Session>;
  session: Session | null;
  inFlight: number;
  lastUsed: number;
  idleTimer: NodeJS.Timeout | null;
  closed: boolean;
}

interface Session {
  client: Client;
  transport: Transport;
  pid: number | null;
  /** The last tool list, until the server says it changed. */
  tools: UpstreamTool[] | null;
}

/**
 * The gateway's upstream sessions: one per caller × installation, started on first use, reused,
 * closed when idle, removed or changed; stdio processes bounded per user and in all.
 */
export class GatewayPool {
  private readonly entries = new Map<string, Entry>();
  private readonly settings: GatewaySettings;
  private readonly log: Logger;
  private readonly http: ReturnType<typeof guardedStreamFetch>;
  private sweepTimer: NodeJS.Timeout | null = null;
  private probes = 0;

  constructor(settings: GatewaySettings, log: Logger) {
    this.settings = settings;
    this.log = log;
    // A remote answer is read only so far: the result limit, and room for its JSON-RPC envelope.
    this.http = guardedStreamFetch(settings.policy, settings.maxResultBytes + 1024 * 1024);
  }

  get limits(): Pick<GatewaySettings, 'callTimeoutMs' | 'maxResultBytes'> {
    return this.settings;
  }

  /** The server's tools, listed afresh (and kept for calls until it says they changed). */
  async listTools(target: UpstreamTarget): Promise<UpstreamTool[]> {
    return this.withSession(target, (session) => this.fetchTools(session, target));
  }

  /** Uses one session for several steps (its tools, then a call), held busy throughout: never evicted in between. */
  async withLease<T>(target: UpstreamTarget, use: (lease: { currentTools(): Promise<UpstreamTool[]>; callTool(name: string, args: Record<string, unknown>): Promise<CallToolResult> }) => Promise<T>): Promise<T> {
    return this.withSession(target, (session) =>
      use({
        currentTools: async () => session.tools ?? (await this.fetchTools(session, target)),
        callTool: async (name, args) => {
          try {
            // The installed server's progress reaches Mandate's client as Mandate's own steps (its counter, so
            // no total: the server's would not count the same steps).
            const report = clientReport();
            const onprogress = report === SILENT_REPORT ? undefined : (progress: Progress) => report.progress(scrubText(String(progress.message ?? `${name} is working`), target.secrets).slice(0, 500));
            return (await session.client.callTool({ name, arguments: args }, undefined, { timeout: this.settings.callTimeoutMs, ...(onprogress ? { onprogress } : {}) })) as CallToolResult;
          } catch (error) {
            throw this.upstreamError(target, error, `calling ${name}`);
          }
        },
      }),
    );
  }

  /**
   * A session of its own, closed after `use` (test_mcp_server). Its process counts against the
   * same limits as pooled ones (it is held in the pool under a key of its own while it runs).
   */
  async probe<T>(target: UpstreamTarget, use: (tools: UpstreamTool[], serverInfo: { name: string; version: string } | null) => Promise<T>): Promise<T> {
    const probeTarget = { ...target, installationId: `${target.installationId}#probe-${++this.probes}` };
    return this.withSession(probeTarget, async (session) => {
      try {
        const tools = await this.fetchTools(session, probeTarget);
        const info = session.client.getServerVersion();
        return await use(tools, info ? { name: info.name, version: info.version } : null);
      } finally {
        const entry = this.entries.get(keyOf(probeTarget));
        if (entry) void this.stop(entry);
      }
    });
  }

  /** The pooled sessions (probes, which stop by themselves, aside). */
  running(): RunningSession[] {
    return [...this.entries.values()].filter((entry) => !entry.target.installationId.includes('#')).map((entry) => ({
      userId: entry.target.userId,
      installationId: entry.target.installationId,
      version: entry.target.version,
      transport: entry.target.transport,
      pid: entry.session?.pid ?? null,
    }));
  }

  /** Closes the sessions `stop` picks (removed installations, deactivated users). */
  async stopWhere(stop: (session: RunningSession) => boolean): Promise<number> {
    const doomed = [...this.entries.values()].filter((entry) => stop({ ...entry.target, pid: entry.session?.pid ?? null }));
    await Promise.all(doomed.map((entry) => this.stop(entry)));
    return doomed.length;
  }

  /** Checks running sessions every `sweepMs` with `stale`, which names the ones to stop. */
  startSweep(stale: (sessions: RunningSession[]) => Promise<RunningSession[]>): void {
    if (this.sweepTimer) return;
    let busy = false;
    this.sweepTimer = setInterval(() => {
      if (busy || this.entries.size === 0) return;
      busy = true;
      stale(this.running())
        .then((doomed) => {
          const keys = new Set(doomed.map(keyOf));
          return this.stopWhere((session) => keys.has(keyOf(session)));
        })
        .catch((error: unknown) => this.log.warn({ err: { message: (error as Error).message } }, 'gateway sweep failed'))
        .finally(() => {
          busy = false;
        });
    }, this.settings.sweepMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    await this.stopWhere(() => true);
    this.http.close();
  }

  private async withSession<T>(target: UpstreamTarget, use: (session: Session) => Promise<T>): Promise<T> {
    const entry = this.acquire(target);
    try {
      return await use(await entry.ready);
    } finally {
      this.release(entry);
    }
  }

  private acquire(target: UpstreamTarget): Entry {
    const key = keyOf(target);
    let entry = this.entries.get(key);
    if (entry && entry.target.version !== target.version) {
      void this.stop(entry);
      entry = undefined;
    }
    if (!entry) {
      if (target.transport === 'stdio') this.makeRoom(target.userId);
      const created: Entry = { target, ready: null as never, session: null, inFlight: 0, lastUsed: Date.now(), idleTimer: null, closed: false };
      created.ready = this.start(target).then(
        (session) => {
          created.session = session;
          if (created.closed) void session.client.close();
          session.client.onclose = () => {
            if (this.entries.get(key) === created) this.entries.delete(key);
          };
          return session;
        },
        (error: unknown) => {
          if (this.entries.get(key) === created) this.entries.delete(key);
          throw error;
        },
      );
      this.entries.set(key, created);
      entry = created;
    }
    entry.inFlight++;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    entry.idleTimer = null;
    return entry;
  }

  private release(entry: Entry): void {
    entry.inFlight--;
    entry.lastUsed = Date.now();
    if (entry.inFlight > 0 || entry.closed) return;
    entry.idleTimer = setTimeout(() => {
      if (entry.inFlight === 0) void this.stop(entry);
    }, this.settings.idleMs);
    entry.idleTimer.unref();
  }

  /** Frees a process slot for `userId`, closing the longest-idle session if a limit is reached; refuses when none is idle. */
  private makeRoom(userId: string): void {
    const stdio = [...this.entries.values()].filter((entry) => entry.target.transport === 'stdio');
    const mine = stdio.filter((entry) => entry.target.userId === userId);
    const evict = (from: Entry[], limit: number, what: string) => {
      if (from.length < limit) return;
      const idle = from.filter((entry) => entry.inFlight === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!idle) {
        throw new OpError('rate_limited', `${what} (${limit}) are running and busy; try again in a few seconds`, { retryAfterSeconds: 5 });
      }
      this.entries.delete(keyOf(idle.target));
      void this.stop(idle);
    };
    evict(mine, this.settings.maxProcessesPerUser, 'as many MCP server processes as one user may have');
    evict(stdio.filter((entry) => this.entries.has(keyOf(entry.target))), this.settings.maxProcesses, 'as many MCP server processes as this Mandate runs');
  }

  private async stop(entry: Entry): Promise<void> {
    entry.closed = true;
    if (entry.idleTimer) clearTimeout(entry.idleTimer);
    const key = keyOf(entry.target);
    if (this.entries.get(key) === entry) this.entries.delete(key);
    const session = await entry.ready.catch(() => null);
    await session?.client.close().catch(() => undefined);
  }

  private async start(target: UpstreamTarget): Promise<Session> {
    const { Client, StreamableHTTPClientTransport, ToolListChangedNotificationSchema } = await loadClient();
    const client = new Client({ name: 'mandate-gateway', version: VERSION }, { capabilities: {} });
    const transport = target.transport === 'stdio' ? this.stdioTransport(target) : this.remoteTransport(target, StreamableHTTPClientTransport);
    const session: Session = { client, transport, pid: null, tools: null };
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      session.tools = null;
    });
    try {
      await client.connect(transport, { timeout: this.settings.startTimeoutMs });
    } catch (error) {
      await client.close().catch(() => undefined);
      throw this.upstreamError(target, error, target.transport === 'stdio' ? 'starting it' : 'connecting');
    }
    session.pid = transport instanceof IsolatedStdioTransport ? (transport.pid ?? null) : null;
    this.log.info({ gateway: target.label, installation: target.installationId, user: target.userId, pid: session.pid }, 'mcp server session started');
    return session;
  }

  private stdioTransport(target: UpstreamTarget): Transport {
    let lines = 0;
    return new IsolatedStdioTransport({
      command: target.command!,
      args: target.args ?? [],
      env: target.env ?? {},
      onStderr: (line) => {
        if (++lines > MAX_STDERR_LINES) return;
        const text = lines === MAX_STDERR_LINES ? '(further stderr of this process is dropped)' : scrubText(line, target.secrets).slice(0, MAX_STDERR_LINE);
        this.log.info({ gateway: target.label, installation: target.installationId, stderr: text }, 'mcp server stderr');
      },
    });
  }

  private remoteTransport(target: UpstreamTarget, StreamableHTTPClientTransport: Awaited<ReturnType<typeof loadClient>>['StreamableHTTPClientTransport']): Transport {
    return new StreamableHTTPClientTransport(new URL(target.url!), {
      fetch: this.http.fetch,
      requestInit: { headers: target.headers ?? {} },
      reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1000, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1 },
    });
  }

  private async fetchTools(session: Session, target: UpstreamTarget): Promise<UpstreamTool[]> {
    const tools: UpstreamTool[] = [];
    let cursor: string | undefined;
    try {
      for (let page = 0; page < MAX_LIST_PAGES; page++) {
        const listed = await session.client.listTools(cursor ? { cursor } : {}, { timeout: this.settings.callTimeoutMs });
        tools.push(...(listed.tools as UpstreamTool[]));
        cursor = listed.nextCursor;
        if (!cursor) break;
      }
    } catch (error) {
      throw this.upstreamError(target, error, 'listing its tools');
    }
    // What the server says of its tools is scrubbed of its secrets like its results are.
    session.tools = target.secrets.length ? scrubValue(tools, target.secrets) : tools;
    return session.tools;
  }

  /** An upstream failure as the caller sees it: which server, doing what, never a secret. */
  private upstreamError(target: UpstreamTarget, error: unknown, doing: string): OpError {
    if (error instanceof OpError) return error;
    const message = scrubText(String((error as Error)?.message ?? error), target.secrets).slice(0, 500);
    if (error instanceof ForbiddenUpstreamError || (error as Error)?.name === 'BlockedAddressError' || (error as { cause?: unknown })?.cause instanceof ForbiddenUpstreamError) {
      return new OpError('forbidden', `MCP server "${target.label}" may not be reached: ${message}`);
    }
    const timedOut = /timed? ?out|timeout/i.test(message) || (error as { code?: unknown })?.code === -32001;
    return new OpError(timedOut ? 'upstream_timeout' : 'upstream_failed', `MCP server "${target.label}" failed ${doing}: ${message}`);
  }
}
