import type { IncomingMessage, ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { OpError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { scrubText } from '../ops/redact.ts';
import { Session } from '../db/entities/index.ts';
import type { UserCaller } from '../identity/caller.ts';
import { emOf, lazyFork, type EmSource } from '../db/orm.ts';
import { endSession, startSession } from '../identity/sessions.ts';
import { EpochCache } from '../access/epoch.ts';
import { localBackend } from '../mcp/backend.ts';
import { createMcpServer } from '../mcp/server.ts';
import { parseToolsetList, servedBy, ToolsetListError, type PmToolset } from '../pm/settings.ts';
import type { Toolset } from '../mcp/toolset.ts';
import type { Runtime } from '../runtime.ts';
import type { HttpAuthenticator } from './authenticate.ts';
import { readJsonBody, sendError, sendJson } from './respond.ts';

const SESSION_HEADER = 'mcp-session-id';

interface SessionRow {
  userId: string;
  ended: boolean;
}

function isInitialize(body: unknown): boolean {
  const messages = Array.isArray(body) ? body : [body];
  return messages.some((message) => (message as { method?: unknown })?.method === 'initialize');
}

function clientNameOf(body: unknown): string | undefined {
  const messages = Array.isArray(body) ? body : [body];
  const init = messages.find((message) => (message as { method?: unknown })?.method === 'initialize') as
    | { params?: { clientInfo?: { name?: unknown; version?: unknown } } }
    | undefined;
  const info = init?.params?.clientInfo;
  return typeof info?.name === 'string' ? `${info.name} ${typeof info.version === 'string' ? info.version : ''}`.trim().slice(0, 200) : undefined;
}

/**
 * MCP over Streamable HTTP. Every request is authenticated on its own (Basic or Bearer), and the
 * session it names must belong to that same user: a session id alone is worth nothing. The
 * session lives in the database (its id is the mcp_session row), and each request is served by a
 * fresh server for the caller, so any instance can serve any session and a session initialised on
 * one instance continues on another. Ending a session, deactivating its user or revoking its
 * token refuses the next request everywhere (the access epoch).
 */
export class McpHttp {
  private readonly runtime: Runtime;
  private readonly auth: HttpAuthenticator;
  private readonly toolsetsByPath: Map<string, Toolset[]>;
  private readonly sessions: EpochCache<SessionRow>;

  constructor(runtime: Runtime, auth: HttpAuthenticator, toolsets: Record<string, Toolset>) {
    this.runtime = runtime;
    this.auth = auth;
    this.toolsetsByPath = new Map([['/mcp', Object.values(toolsets)], ...Object.entries(toolsets).map(([name, t]): [string, Toolset[]] => [`/mcp/${name}`, [t]])]);
    this.sessions = new EpochCache(runtime.resolver.epoch);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const toolsets = this.toolsetsByPath.get(url.pathname.replace(/\/$/, ''));
    if (!toolsets) return false;
    const arrived = performance.now();
    const em = lazyFork(this.runtime.db.orm);
    try {
      // Authentication sends the access epoch read; the body is read and parsed while it is out.
      // Its error, if any, is reported only once the caller is known (a 401 comes first).
      const authenticated = this.auth.authenticate(req, arrived, em);
      const bodyRead = req.method === 'POST' ? readJsonBody(req) : undefined;
      bodyRead?.catch(() => undefined);
      const caller = await authenticated;
      const sessionId = req.headers[SESSION_HEADER];
      if (req.method === 'GET') {
        // No server-initiated stream: the protocol lets a server answer 405 here.
        sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'this server sends no stream on GET; POST requests' } }, { allow: 'POST, DELETE' });
        return true;
      }
      if (req.method === 'DELETE') {
        const bound = await this.boundSession(em, caller, sessionId, arrived);
        await endSession(em(), bound, 'closed by the client');
        res.writeHead(204).end();
        return true;
      }
      if (req.method !== 'POST') {
        sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${url.pathname} takes POST and DELETE` } }, { allow: 'POST, DELETE' });
        return true;
      }
      const body = await bodyRead!;
      let bound: string;
      if (sessionId === undefined) {
        if (!isInitialize(body)) throw new OpError('invalid_input', `no ${SESSION_HEADER}: start with an initialize request`, { field: SESSION_HEADER });
        const started = await startSession(em(), caller, {
          transport: 'http',
          servers: toolsets.map((t) => t.name),
          clientName: clientNameOf(body),
          clientAddress: this.auth.clientAddress(req),
        });
        bound = started.sessionId;
        res.setHeader(SESSION_HEADER, bound);
      } else {
        bound = await this.boundSession(em, caller, sessionId, arrived);
      }
      await this.serve(req, res, body, toolsets, { ...caller, sessionId: bound }, { startedAt: arrived, clientAddress: this.auth.clientAddress(req) });
    } catch (error) {
      if (error instanceof OpError) sendError(res, error);
      else {
        this.runtime.log.error({ err: { type: (error as Error)?.name, message: scrubText(String((error as Error)?.message)) } }, 'MCP request failed');
        if (!res.headersSent) sendError(res, new OpError('internal', 'internal error; the server log has the details'));
      }
    }
    return true;
  }

  /** The session the request names, which must be live and the caller's own. */
  private async boundSession(em: EmSource, caller: UserCaller, header: string | string[] | undefined, arrived: number): Promise<string> {
    const id = typeof header === 'string' ? header : undefined;
    if (!id) throw new OpError('invalid_input', `${SESSION_HEADER} is missing`, { field: SESSION_HEADER });
    const row = isUuid(id) ? await this.sessionRow(em, id, arrived) : null;
    // Unknown or ended: 404 tells a client to initialise a new session.
    if (!row || row.ended) throw new OpError('not_found', 'this MCP session does not exist or has ended; initialize a new one');
    if (row.userId !== caller.userId) {
      this.runtime.log.warn({ sessionId: id, actor: caller.userId }, 'MCP session used with another user\'s credentials');
      throw new OpError('unauthenticated', 'these credentials do not belong to this MCP session');
    }
    return id;
  }

  private async sessionRow(em: EmSource, id: string, arrived: number): Promise<SessionRow | null> {
    return this.sessions.getOrLoad(
      em,
      id,
      new Date(),
      async () => {
        const session = await emOf(em).findOne(Session, { id });
        return session ? { value: { userId: session.user.id, ended: session.endedAt !== null }, validUntil: null } : null;
      },
      arrived,
    );
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    body: unknown,
    toolsets: Toolset[],
    caller: UserCaller & { sessionId: string },
    request: { startedAt: number; clientAddress: string },
  ) {
    const serves = servedBy(this.runtime.pm.settings, requestedToolsets(req));
    const server = createMcpServer({ toolsets, serves, backend: localBackend(this.runtime, caller, request) });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    // Not closed afterwards: with JSON responses nothing stays open once the answer is written,
    // and closing builds an McpError (with its stack) per request, ~4% of the server's CPU.
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }
}

const TOOLSETS_HEADER = 'x-mcp-toolsets';

/** The PM toolsets a request narrows itself to (X-MCP-Toolsets: issues,comments), if it does. */
function requestedToolsets(req: IncomingMessage): ReadonlySet<PmToolset> | undefined {
  const header = req.headers[TOOLSETS_HEADER];
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  try {
    return parseToolsetList(header, 'X-MCP-Toolsets');
  } catch (error) {
    if (error instanceof ToolsetListError) throw new OpError('invalid_input', error.message, { field: 'X-MCP-Toolsets' });
    throw error;
  }
}
