import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { SEPARATOR as GATEWAY_SEPARATOR } from '../gateway/names.ts';
import { OpError, type ErrorBody } from '../errors.ts';
import { callGatewayTool, listGatewayTools, OPERATIONS } from '../ops/index.ts';
import { isReadEffect, type AnyOperation } from '../ops/operation.ts';
import { VERSION } from '../version.ts';
import type { ToolBackend } from './backend.ts';
import { composeOperations, toolDescriptor, type Toolset } from './toolset.ts';
import { ProtocolError, ValidatingServer } from './validating-server.ts';

export interface McpServerOptions {
  toolsets: readonly Toolset[];
  /** Serve only read-only tools (viewer, auditor). */
  readOnly?: boolean;
  /** Waited for before any tool is listed or run (e.g. the stdio process still authenticating). */
  ready?: Promise<ToolBackend>;
  backend?: ToolBackend;
  /** Which operations this server serves (PM toolsets chosen by the deployment or request). */
  serves?: (op: AnyOperation) => boolean;
}

/**
 * One MCP server for one caller (the SDK refuses to share a server between clients). Built on the
 * SDK's low-level Server: tools are listed per request from the caller's current permissions, and
 * every call goes through the backend, whose guard and audit are the law.
 */
// The SDK builds a new Ajv instance for every Server unless given one; servers are made per
// session or per request here, so they share one (it is only used for elicitation schemas).
let sharedValidator: AjvJsonSchemaValidator | undefined;

export function createMcpServer(options: McpServerOptions): Server {
  const operations = composeOperations(options.toolsets, options.readOnly ?? false, options.serves);
  const served = new Map(operations.map((op) => [op.name, op]));
  const name = `mandate-${options.toolsets.map((t) => t.name).join('-')}`;
  const backend = async () => options.backend ?? (await options.ready!);
  // Installed servers' tools are their servers' word, whatever their hints say: not on read-only servers.
  const gateway = !(options.readOnly ?? false) && options.toolsets.some((t) => t.gateway);

  const server = new ValidatingServer(
    { name, title: `Mandate (${options.toolsets.map((t) => t.name).join(' + ')})`, version: VERSION },
    {
      capabilities: { tools: { listChanged: false } },
      instructions: options.toolsets.map((t) => t.instructions).join('\n'),
      jsonSchemaValidator: (sharedValidator ??= new AjvJsonSchemaValidator()),
    },
  );

  server.setRequestHandler(ListToolsRequestSchema, async () => {
    const tools = await backend();
    const visible = await tools.visible(gateway ? [...operations, listGatewayTools] : operations);
    const own = visible.filter((op) => op !== listGatewayTools).map(toolDescriptor);
    return { tools: visible.includes(listGatewayTools) ? [...own, ...(await gatewayTools(tools))] : own };
  });

  server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
    const { name: toolName, arguments: args } = request.params;
    const tools = await backend();
    const op = served.get(toolName);
    if (!op && gateway && toolName.includes(GATEWAY_SEPARATOR)) return callThroughGateway(tools, toolName, args);
    if (!op) return refuseUnserved(tools, toolName, args, name, options.readOnly ?? false);
    const result = await tools.call(op, args ?? {});
    return result.ok ? toolResult(result.value) : toolError(result.error);
  });

  return server;
}

/** The installed servers' tools as MCP tools; none when the gateway cannot list them (Mandate's own still are). */
async function gatewayTools(tools: ToolBackend): Promise<Tool[]> {
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

async function callThroughGateway(tools: ToolBackend, name: string, args: unknown): Promise<CallToolResult> {
  const result = await tools.call(callGatewayTool, { name, arguments: args ?? {} });
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

async function refuseUnserved(tools: ToolBackend, toolName: string, args: unknown, serverName: string, readOnly: boolean): Promise<CallToolResult> {
  const known: AnyOperation | undefined = Object.hasOwn(OPERATIONS, toolName) ? OPERATIONS[toolName] : undefined;
  // A name no server of Mandate's has is a protocol error (-32602), as the specification lists it.
  if (!known) throw new ProtocolError(ErrorCode.InvalidParams, `unknown tool "${toolName}"; tools/list shows the tools you can call`, { code: 'not_found', field: 'params.name' });
  const why = readOnly && !isReadEffect(known.effect)
    ? 'this server serves read-only tools only'
    : known.toolset
      ? `${serverName} does not serve it here: its toolset "${known.toolset}" is not enabled for this deployment or request`
      : `${serverName} does not serve it`;
  const error = new OpError('forbidden', `permission denied: ${toolName} is not available here (${why})`);
  await tools.refuse(known, args, error);
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
