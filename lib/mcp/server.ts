import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, SetLevelRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { SEPARATOR as GATEWAY_SEPARATOR } from '../gateway/names.ts';
import { OpError, type ErrorBody } from '../errors.ts';
import { VERSION } from '../version.ts';
import type { ToolBackend } from './backend.ts';
import type { Catalog, ServedTool } from './catalog.ts';
import { ProtocolError, ValidatingServer } from './validating-server.ts';
import { levelInMemory, notificationReport, type LogLevelSetting } from './client-report.ts';
import { DEFAULT_CLIENT_LOG_LEVEL, SILENT_REPORT, type ClientReport } from '../report.ts';

export interface McpServerOptions<T extends ServedTool> {
  /** What it serves (lib/mcp/local-catalog.ts; in remote mode, what the Mandate server published). */
  catalog: Catalog<T>;
  /** Waited for before any tool is listed or run (e.g. the stdio process still authenticating). */
  ready?: Promise<ToolBackend<T>>;
  backend?: ToolBackend<T>;
  /** The session's log level (logging/setLevel); kept by this server when not given (stdio: one server per session). */
  logLevel?: LogLevelSetting;
  /**
   * Whether notifications about a request can reach the client while it runs (stdio, an SSE
   * response); when false, calls report nothing (a JSON response has nowhere to put them).
   */
  streams?: boolean;
  /**
   * Watch the caller's tool list this often (ms) and send notifications/tools/list_changed when it
   * changes (stdio: one long-lived server per session). Off when not given (HTTP: a server per request).
   */
  watchToolsMs?: number;
}

/**
 * One MCP server for one caller (the SDK refuses to share a server between clients). Built on the
 * SDK's low-level Server: tools are listed per request from the caller's current permissions, and
 * every call goes through the backend, whose guard and audit are the law.
 */
// The SDK builds a new Ajv instance for every Server unless given one; servers are made per
// session or per request here, so they share one (it is only used for elicitation schemas).
let sharedValidator: AjvJsonSchemaValidator | undefined;

export function createMcpServer<T extends ServedTool>(options: McpServerOptions<T>): Server {
  const { catalog } = options;
  const served = new Map(catalog.tools.map((tool) => [tool.name, tool]));
  const backend = async () => options.backend ?? (await options.ready!);
  const gateway = catalog.gateway;

  const server = new ValidatingServer(
    { name: catalog.name, title: catalog.title, version: VERSION },
    {
      capabilities: { tools: { listChanged: options.watchToolsMs !== undefined }, logging: {} },
      instructions: catalog.instructions,
      jsonSchemaValidator: (sharedValidator ??= new AjvJsonSchemaValidator()),
    },
  );

  const logLevel = options.logLevel ?? levelInMemory(DEFAULT_CLIENT_LOG_LEVEL);
  // Replaces the SDK's own handler, which keeps the level in this (per-request, on HTTP) server object.
  server.setRequestHandler(SetLevelRequestSchema, async (request) => {
    await logLevel.choose(request.params.level);
    return {};
  });

  const listable = gateway ? [...catalog.tools, gateway.list] : catalog.tools;
  // What the watch compares: Mandate's own tools the caller holds (and whether the gateway's are
  // listed at all; listing those is an audited call, not something to repeat on a timer).
  let listed: string | undefined;
  const fingerprint = (visible: readonly T[]) => visible.map((tool) => tool.name).join(',');
  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await backend();
    const visible = await tools.visible(listable);
    listed = fingerprint(visible);
    const own = visible.filter((tool) => tool !== gateway?.list).map((tool) => catalog.describe(tool));
    return { tools: gateway && visible.includes(gateway.list) ? [...own, ...(await gatewayTools(tools, gateway.list))] : own };
  });
  if (options.watchToolsMs !== undefined) watchToolList(server, options.watchToolsMs, async () => fingerprint(await (await backend()).visible(listable)), () => listed, (now) => (listed = now));

  server.setRequestHandler(CallToolRequestSchema, async (request, extra): Promise<CallToolResult> => {
    const { name: toolName, arguments: args } = request.params;
    const tools = await backend();
    const report = options.streams === false ? SILENT_REPORT : notificationReport(extra.sendNotification, logLevel.current(), request.params._meta?.progressToken);
    const tool = served.get(toolName);
    if (!tool && gateway && toolName.includes(GATEWAY_SEPARATOR)) return callThroughGateway(tools, gateway.call, toolName, args, report);
    if (!tool) return refuseUnserved(tools, catalog, toolName, args);
    const result = await tools.call(tool, args ?? {}, report);
    return result.ok ? toolResult(result.value) : toolError(result.error);
  });

  return server;
}

/**
 * Polls the caller's tool list once the client has listed it, and tells the client when it differs
 * from what it was last shown (a role assigned or revoked, a delegation, the user deactivated),
 * so it lists again. A poll that fails (database away) is skipped; polls never overlap.
 */
function watchToolList(server: Server, everyMs: number, current: () => Promise<string>, shown: () => string | undefined, show: (now: string) => void): void {
  let polling = false;
  const timer = setInterval(async () => {
    const before = shown();
    if (polling || before === undefined) return;
    polling = true;
    try {
      const now = await current();
      if (now !== before && shown() === before) {
        show(now);
        await server.sendToolListChanged();
      }
    } catch {
      // Tried again at the next tick.
    } finally {
      polling = false;
    }
  }, everyMs);
  timer.unref();
  const closed = server.onclose;
  server.onclose = () => {
    clearInterval(timer);
    closed?.();
  };
}

/** The installed servers' tools as MCP tools; none when the gateway cannot list them (Mandate's own still are). */
async function gatewayTools<T extends ServedTool>(tools: ToolBackend<T>, listGatewayTools: T): Promise<Tool[]> {
  const listed = await tools.call(listGatewayTools, {});
  if (!listed.ok) return [];
  return (listed.value as { tools: GatewayTool[] }).tools.map((tool) => ({
    name: tool.name,
    ...(tool.title !== null ? { title: tool.title } : {}),
    ...(tool.description !== null ? { description: tool.description } : {}),
    inputSchema: tool.input_schema as Tool['inputSchema'],
    ...(tool.output_schema ? { outputSchema: tool.output_schema as Tool['outputSchema'] } : {}),
    ...(tool.annotations ? { annotations: tool.annotations } : {}),
  }));
}

async function callThroughGateway<T extends ServedTool>(tools: ToolBackend<T>, callGatewayTool: T, name: string, args: unknown, report: ClientReport): Promise<CallToolResult> {
  const result = await tools.call(callGatewayTool, { name, arguments: args ?? {} }, report);
  if (!result.ok) return toolError(result.error);
  const value = result.value as { content: CallToolResult['content']; structured_content: Record<string, unknown> | null; is_error: boolean };
  return { content: value.content, ...(value.structured_content ? { structuredContent: value.structured_content } : {}), ...(value.is_error ? { isError: true } : {}) };
}

interface GatewayTool {
  name: string;
  title: string | null;
  description: string | null;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown> | null;
  annotations: Record<string, unknown> | null;
}

async function refuseUnserved<T extends ServedTool>(tools: ToolBackend<T>, catalog: Catalog<T>, toolName: string, args: unknown): Promise<CallToolResult> {
  const known = catalog.known(toolName);
  // A name no server of Mandate's has is a protocol error (-32602), as the specification lists it.
  if (!known) throw new ProtocolError(ErrorCode.InvalidParams, `unknown tool "${toolName}"; tools/list shows the tools you can call`, { code: 'not_found', field: 'params.name' });
  const error = new OpError('forbidden', `permission denied: ${toolName} is not available here (${known.why})`);
  await tools.refuse(known.tool, args, error);
  return toolError(error);
}

/** Structured JSON for clients that read it, and the same JSON as text for those that do not. */
export function toolResult(value: unknown): CallToolResult {
  const structured = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : { result: value };
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

/**
 * A tool error: `{error: {code, message, field}}` as JSON text. Never as structuredContent, which
 * clients check against the tool's outputSchema (the SDK's client does, even for an error).
 */
export function toolError(error: OpError): CallToolResult {
  const body: ErrorBody = error.toBody();
  return { isError: true, content: [{ type: 'text', text: JSON.stringify({ error: body }) }] };
}

/** The error a tool error result carries (for clients and tests of this server). */
export function errorOfToolResult(result: object): ErrorBody {
  const [first] = ((result as { content?: unknown }).content ?? []) as { type?: string; text?: string }[];
  return (JSON.parse(first?.text ?? '{}') as { error: ErrorBody }).error;
}
