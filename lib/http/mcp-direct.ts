import type { IncomingMessage } from 'node:http';
import type { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJsonContentType } from '@modelcontextprotocol/sdk/shared/mediaType.js';
import {
  JSONRPCRequestSchema,
  SUPPORTED_PROTOCOL_VERSIONS,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Reply } from './respond.ts';

/**
 * The JSON-RPC request in a POST when the SDK's Streamable HTTP transport (stateless, JSON
 * responses) would do nothing with it but hand it to the server and answer 200 with the one
 * response: the same checks, with the SDK's own guards. Undefined for anything else (initialize,
 * notifications, batches, a header the transport would refuse), which the transport then answers.
 */
export function plainRequest(req: IncomingMessage, body: unknown): JSONRPCRequest | undefined {
  const accept = req.headers.accept;
  if (!accept?.includes('application/json') || !accept.includes('text/event-stream')) return undefined;
  if (!isJsonContentType(req.headers['content-type'] ?? null)) return undefined;
  const version = req.headers['mcp-protocol-version'];
  if (version !== undefined && (typeof version !== 'string' || !SUPPORTED_PROTOCOL_VERSIONS.includes(version))) return undefined;
  const parsed = JSONRPCRequestSchema.safeParse(body);
  // Anything named initialize is left to the transport: no second schema parse on every call.
  if (!parsed.success || parsed.data.method === 'initialize') return undefined;
  return parsed.data;
}

/**
 * The server's answer to one plain request (see plainRequest), exactly as the SDK transport would
 * send it, without the web Request/Response round trip and the stream reading around it: that
 * costs ~100 us of CPU per request, a quarter of the whole (bench/http.bench.ts).
 */
export async function answerPlainRequest(server: Server, request: JSONRPCRequest): Promise<Reply> {
  const transport = new OneRequestTransport(request.id);
  await server.connect(transport);
  transport.onmessage?.(request);
  const response = await transport.response;
  return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(response) };
}

/** Carries one request to the server and takes its response. */
class OneRequestTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;
  readonly response: Promise<JSONRPCMessage>;
  private readonly id: RequestId;
  private respond!: (message: JSONRPCMessage) => void;

  constructor(id: RequestId) {
    this.id = id;
    this.response = new Promise((resolve) => {
      this.respond = resolve;
    });
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {}

  // Notifications about the request (progress, log messages) have no stream to go to in JSON
  // mode: the SDK transport drops them too.
  async send(message: JSONRPCMessage): Promise<void> {
    if ('id' in message && message.id === this.id && ('result' in message || 'error' in message)) this.respond(message);
  }
}
