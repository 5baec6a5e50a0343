import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { databaseUnavailable, OpError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { scrubText } from '../redact.ts';
import type { UserCaller } from '../identity/caller.ts';
import { endSession, sessionOwner, setSessionLogLevel, startSession } from '../identity/sessions.ts';
import { AccessCache } from '../access/changes.ts';
import { Speculation, SpeculationFailed } from '../access/speculation.ts';
import type { RunMeta } from '../ops/runner.ts';
import { localBackend } from '../mcp/backend.ts';
import { OPERATIONS } from '../ops/index.ts';
import { createMcpServer } from '../mcp/server.ts';
import { localCatalog } from '../mcp/local-catalog.ts';
import { parseToolsetList, servedBy, ToolsetListError, type PmToolset } from '../pm/settings.ts';
import type { Toolset } from '../mcp/toolset.ts';
import type { Runtime } from '../runtime.ts';
import type { HttpAuthenticator, Scope } from './authenticate.ts';
import { answerPlainRequest, plainRequest } from './mcp-direct.ts';
import { INTERNAL_ERROR, jsonRpcErrorReply, requestIdOf, SERVER_ERROR } from './jsonrpc-error.ts';
import { jsonReply, readJsonBody, writeReply, WWW_AUTHENTICATE, type Reply } from './respond.ts';
import { resourceMetadataUrl } from './oauth.ts';
import { FULL_SCOPE } from '../oauth/settings.ts';
import { DEFAULT_CLIENT_LOG_LEVEL, type LogLevel } from '../report.ts';
import type { LogLevelSetting } from '../mcp/client-report.ts';
import { ProtocolError } from '../mcp/validating-server.ts';

const SESSION_HEADER = 'mcp-session-id';

interface SessionRow {
  userId: string;
  ended: boolean;
  logLevel: LogLevel | null;
}

/** The session a request is served in: its id, and the log level its client chose (null: none). */
interface BoundSession {
  id: string;
  logLevel: LogLevel | null;
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
 * token refuses the next request everywhere (the access-change feed).
 */
export class McpHttp {
  private readonly runtime: Runtime;
  private readonly auth: HttpAuthenticator;
  private readonly toolsetsByPath: Map<string, Toolset[]>;
  private readonly sessions: AccessCache<SessionRow>;

  constructor(runtime: Runtime, auth: HttpAuthenticator, toolsets: Record<string, Toolset>) {
    this.runtime = runtime;
    this.auth = auth;
    this.toolsetsByPath = new Map([['/mcp', Object.values(toolsets)], ...Object.entries(toolsets).map(([name, t]): [string, Toolset[]] => [`/mcp/${name}`, [t]])]);
    this.sessions = new AccessCache(runtime.resolver.changes);
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const toolsets = this.toolsetsByPath.get(url.pathname.replace(/\/$/, ''));
    if (!toolsets) return false;
    const arrived = performance.now();
    // The body is read and parsed while the access-change read is out. Its error, if any, is
    // reported only once the caller is known (a 401 comes first).
    const bodyRead = req.method === 'POST' ? readJsonBody(req) : undefined;
    bodyRead?.catch(() => undefined);
    // A request on a bound session is served from the caches while the access-change read is out, and its
    // answer held until the read vouches for them. Initialize (a login) and DELETE (a write) wait.
    const speculation = req.method === 'POST' && req.headers[SESSION_HEADER] !== undefined
      ? Speculation.begin(this.runtime.resolver.changes, this.runtime.scope(), arrived)
      : undefined;
    let reply = await this.answer(req, url, toolsets, arrived, bodyRead, speculation);
    if (speculation && !(await speculation.confirmed())) {
      // The caller's access changed: whatever was computed is dropped unseen, and the request is served again
      // on what the read found (it was sent after the request arrived: nothing waits for another).
      reply = await this.answer(req, url, toolsets, arrived, bodyRead, undefined);
    }
    writeReply(res, reply);
    return true;
  }

  private async answer(
    req: IncomingMessage,
    url: URL,
    toolsets: Toolset[],
    arrived: number,
    bodyRead: Promise<Record<string, unknown>> | undefined,
    speculation: Speculation | undefined,
  ): Promise<Reply> {
    const em = this.runtime.scope();
    try {
      const caller = await this.auth.authenticate(req, arrived, em, speculation, this.resourceOf(url));
      const sessionId = req.headers[SESSION_HEADER];
      if (req.method === 'GET') {
        // No server-initiated stream: the protocol lets a server answer 405 here.
        return methodNotAllowed('this server sends no stream on GET; POST requests');
      }
      if (req.method === 'DELETE') {
        const bound = await this.boundSession(em, caller, sessionId, arrived, speculation);
        await endSession(em(), bound.id, 'closed by the client');
        return { status: 204, headers: {}, body: '' };
      }
      if (req.method !== 'POST') {
        return methodNotAllowed(`${url.pathname} takes POST and DELETE`);
      }
      const body = await bodyRead!;
      const stepUp = await this.insufficientScope(em, caller, body, toolsets, url, speculation?.notBefore ?? arrived, speculation);
      if (stepUp) return stepUp;
      const request = { startedAt: arrived, clientAddress: this.auth.clientAddress(req), speculation };
      if (sessionId !== undefined) {
        const bound = await this.boundSession(em, caller, sessionId, arrived, speculation);
        return await this.serve(req, url, body, toolsets, { ...caller, sessionId: bound.id }, bound.logLevel, request);
      }
      if (!isInitialize(body)) throw new OpError('invalid_input', `no ${SESSION_HEADER}: start with an initialize request`, { field: SESSION_HEADER });
      const started = await startSession(em(), caller, {
        transport: 'http',
        servers: toolsets.map((t) => t.name),
        clientName: clientNameOf(body),
        clientAddress: request.clientAddress,
      });
      const reply = await this.serve(req, url, body, toolsets, { ...caller, sessionId: started.sessionId }, null, request);
      reply.headers[SESSION_HEADER] = started.sessionId;
      return reply;
    } catch (error) {
      // Transport errors are JSON-RPC error bodies, with the id of the request when it has one.
      const id = (await bodyRead?.then(requestIdOf, () => null)) ?? null;
      if (error instanceof OpError) return jsonRpcErrorReply(error, id, this.challenge(req, url));
      const unavailable = databaseUnavailable(error);
      if (unavailable) return jsonRpcErrorReply(unavailable, id);
      // A failed speculation is dropped unseen and served again; the error is reported then.
      if (!(error instanceof SpeculationFailed) && (!speculation || (await speculation.confirmed()))) {
        this.logFailure(error, 'MCP request failed');
      }
      return jsonRpcErrorReply(new OpError('internal', 'internal error; the server log has the details'), id);
    }
  }

  /** An unexpected failure, as the server log keeps it: its type and scrubbed message, never a stack of secrets. */
  private logFailure(error: unknown, what: string): void {
    this.runtime.log.error({ err: { type: (error as Error)?.name, message: scrubText(String((error as Error)?.message)) } }, what);
  }

  /** This endpoint as an OAuth protected resource (RFC 8707 / RFC 9728). */
  private resourceOf(url: URL): string | null {
    return this.runtime.oauth ? `${this.runtime.oauth.settings.issuer}${url.pathname.replace(/\/$/, '')}` : null;
  }

  /** A 401's challenge: where to find the authorization server (when OAuth is on), and Basic. */
  private challenge(req: IncomingMessage, url: URL): string {
    const oauth = this.runtime.oauth;
    if (!oauth) return WWW_AUTHENTICATE;
    const metadata = resourceMetadataUrl(oauth.settings.issuer, url.pathname.replace(/\/$/, ''));
    const invalid = /^bearer\s/i.test(req.headers.authorization ?? '') ? ', error="invalid_token"' : '';
    return `Bearer realm="mandate", resource_metadata="${metadata}", scope="${FULL_SCOPE}"${invalid}, Basic realm="mandate", charset="UTF-8"`;
  }

  /**
   * An OAuth token whose grant was narrowed, calling a tool that needs a permission outside it:
   * 403 with `error="insufficient_scope"` and the scope to ask for (the grant's and that one), so
   * the client can send the user to consent again (the MCP step-up flow). A permission the user
   * does not hold at all is the tool's ordinary refusal, after this.
   */
  private async insufficientScope(em: Scope, caller: UserCaller, body: unknown, toolsets: Toolset[], url: URL, notBefore: number, speculation: Speculation | undefined): Promise<Reply | null> {
    const oauth = this.runtime.oauth;
    if (!oauth || caller.resource === undefined || Array.isArray(body)) return null;
    const message = body as { method?: unknown; params?: { name?: unknown } };
    if (message?.method !== 'tools/call' || typeof message.params?.name !== 'string') return null;
    const name = message.params.name;
    const op = OPERATIONS[name];
    if (!op?.permission || !toolsets.some((t) => t.operations.includes(op))) return null;
    const effective = await this.runtime.resolver.resolve(em, caller, null, notBefore, speculation);
    if (!effective.live || !effective.scopes || effective.scopes.includes(op.permission)) return null;
    const held = await this.runtime.resolver.resolveAnywhere(em, { userId: caller.userId }, notBefore, speculation);
    if (!held.grants.has(op.permission)) return null;
    const scope = [...effective.scopes, op.permission].join(' ');
    const metadata = resourceMetadataUrl(oauth.settings.issuer, url.pathname.replace(/\/$/, ''));
    const denied = new OpError('forbidden', `permission denied: ${name} needs ${op.permission}, which this application was not granted; authorize it again with scope "${scope}"`);
    const reply = jsonRpcErrorReply(denied, requestIdOf(body));
    reply.headers['www-authenticate'] = `Bearer realm="mandate", error="insufficient_scope", scope="${scope}", resource_metadata="${metadata}", error_description="${name} needs ${op.permission}"`;
    return reply;
  }

  /** The session the request names, which must be live and the caller's own. */
  private async boundSession(
    em: Scope,
    caller: UserCaller,
    header: string | string[] | undefined,
    arrived: number,
    speculation: Speculation | undefined,
  ): Promise<BoundSession> {
    const id = typeof header === 'string' ? header : undefined;
    if (!id) throw new OpError('invalid_input', `${SESSION_HEADER} is missing`, { field: SESSION_HEADER });
    const row = isUuid(id) ? await this.sessionRow(em, id, speculation?.notBefore ?? arrived, speculation) : null;
    // Unknown or ended: 404 tells a client to initialise a new session.
    if (!row || row.ended) throw new OpError('not_found', 'this MCP session does not exist or has ended; initialize a new one');
    if (row.userId !== caller.userId) {
      // Logged only for a caller the access-change read vouches for.
      await speculation?.settle();
      this.runtime.log.warn({ sessionId: id, actor: caller.userId }, 'MCP session used with another user\'s credentials');
      throw new OpError('unauthenticated', 'these credentials do not belong to this MCP session');
    }
    return { id, logLevel: row.logLevel };
  }

  private async sessionRow(em: Scope, id: string, notBefore: number, speculation: Speculation | undefined): Promise<SessionRow | null> {
    return this.sessions.getOrLoad(
      em,
      id,
      new Date(),
      async () => {
        const owner = await sessionOwner(em, id);
        // Its user's access changes end it; a new log level is a change of the session's own id.
        return owner ? { value: owner, subject: owner.userId, dependsOn: [id], validUntil: null } : null;
      },
      notBefore,
      speculation,
    );
  }

  /**
   * The SDK's answer to the request, taken as a value rather than written (see handle). A plain
   * request (one call, no initialize) is handed to the server directly; the SDK's transport answers
   * everything else. A tool call whose client asked to hear from it while it runs (a progressToken,
   * or a log level chosen for the session) is answered as an SSE stream; every other request as JSON.
   */
  private async serve(
    req: IncomingMessage,
    url: URL,
    body: unknown,
    toolsets: Toolset[],
    caller: UserCaller & { sessionId: string },
    chosenLevel: LogLevel | null,
    request: Pick<RunMeta, 'startedAt' | 'clientAddress' | 'speculation'>,
  ): Promise<Reply> {
    const serves = servedBy(this.runtime.pm.settings, requestedToolsets(req));
    const streamed = wantsStream(req, body, chosenLevel);
    // Notifications leave the process as they are sent: a streamed call runs on vouched-for caches only.
    if (streamed) await request.speculation?.settle();
    const logLevel: LogLevelSetting = {
      current: () => chosenLevel ?? DEFAULT_CLIENT_LOG_LEVEL,
      choose: async (level) => {
        await request.speculation?.settle();
        try {
          await setSessionLogLevel(this.runtime.scope()(), caller.sessionId, level);
        } catch (error) {
          // Answered as a JSON-RPC error by the SDK: never the driver's message.
          const away = databaseUnavailable(error);
          if (!away) this.logFailure(error, 'storing an MCP session\'s log level failed');
          throw new ProtocolError(INTERNAL_ERROR, away ? away.message : 'the log level could not be stored; the server log has the details', { code: away ? 'unavailable' : 'internal' });
        }
      },
    };
    const server = createMcpServer({ catalog: localCatalog(toolsets, false, serves), backend: localBackend(this.runtime, caller, request), logLevel, streams: streamed });
    const plain = streamed ? undefined : plainRequest(req, body);
    if (plain) return answerPlainRequest(server, plain);
    // The web-standard transport answers with a Response instead of writing to the socket.
    const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: !streamed });
    // Not closed afterwards: with JSON responses nothing stays open once the answer is taken,
    // and closing builds an McpError (with its stack) per request, ~4% of the server's CPU.
    await server.connect(transport);
    const response = await transport.handleRequest(webRequest(req, url), { parsedBody: body });
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (streamed && response.body && headers['content-type']?.startsWith('text/event-stream')) return { status: response.status, headers, body: '', stream: response.body };
    return { status: response.status, headers, body: await response.text() };
  }
}

/** A single tools/call whose client takes SSE and asked for progress or log messages. */
function wantsStream(req: IncomingMessage, body: unknown, chosenLevel: LogLevel | null): boolean {
  if (!req.headers.accept?.includes('text/event-stream') || Array.isArray(body)) return false;
  const message = body as { method?: unknown; params?: { _meta?: { progressToken?: unknown } } } | null;
  if (message?.method !== 'tools/call') return false;
  const token = message.params?._meta?.progressToken;
  return chosenLevel !== null || typeof token === 'string' || typeof token === 'number';
}

/** 405 as the SDK's transport answers it: a JSON-RPC error body, and the methods that are taken. */
function methodNotAllowed(message: string): Reply {
  return jsonReply(405, { jsonrpc: '2.0', id: null, error: { code: SERVER_ERROR, message, data: { code: 'method_not_allowed', message } } }, { allow: 'POST, DELETE' });
}

/** The request's method, URL and headers as a web Request (the body is already parsed). */
function webRequest(req: IncomingMessage, url: URL): Request {
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return new Request(url, { method: req.method, headers });
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
