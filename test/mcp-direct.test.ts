import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { answerPlainRequest, plainRequest } from '../lib/http/mcp-direct.ts';

// What the SDK's own client sends on every POST after initialize.
const CLIENT_HEADERS = { accept: 'application/json, text/event-stream', 'content-type': 'application/json', 'mcp-protocol-version': '2025-06-18' };

/** A small server whose handlers cover a result, a tool error, a thrown error and a notification sent mid-call. */
function newServer(): Server {
  const server = new Server({ name: 'direct-test', version: '1' }, { capabilities: { tools: {}, logging: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [{ name: 'echo', inputSchema: { type: 'object' } }] }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    const { name, arguments: args } = request.params;
    if (name === 'throws') throw new Error('handler failed: "quoted" \u00e9');
    if (name === 'chatty') {
      await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'working' } });
    }
    if (name === 'tool_error') return { isError: true, content: [{ type: 'text', text: 'no such thing' }] };
    return { content: [{ type: 'text', text: JSON.stringify(args ?? {}) }], structuredContent: { echoed: args ?? {} } };
  });
  return server;
}

/** What the SDK's Streamable HTTP transport (stateless, JSON responses) answers to the same request. */
async function viaSdkTransport(headers: Record<string, string>, body: unknown) {
  const server = newServer();
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  const response = await transport.handleRequest(new Request('http://127.0.0.1/mcp', { method: 'POST', headers }), { parsedBody: body });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type'), body: text ? (JSON.parse(text) as unknown) : undefined };
}

function incoming(headers: Record<string, string>): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

const call = (id: string | number, name: string, args?: unknown) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, ...(args === undefined ? {} : { arguments: args }) } });

test('a plain request is answered exactly as the SDK transport answers it: results, tool errors, protocol errors, thrown handlers', async () => {
  const bodies = [
    call(1, 'echo', { text: 'héllo', nested: { list: [1, null, 'x'] } }),
    call('string-id', 'echo'),
    call(2, 'tool_error'),
    call(3, 'throws'),
    call(4, 'chatty', { a: 1 }),
    { jsonrpc: '2.0', id: 5, method: 'tools/list' },
    { jsonrpc: '2.0', id: 6, method: 'ping' },
    { jsonrpc: '2.0', id: 7, method: 'no/such/method' },
    { jsonrpc: '2.0', id: 8, method: 'tools/call', params: { arguments: {} } },
  ];
  for (const body of bodies) {
    const request = plainRequest(incoming(CLIENT_HEADERS), body);
    assert.ok(request, `${JSON.stringify(body)} is a plain request`);
    const direct = await answerPlainRequest(newServer(), request);
    const sdk = await viaSdkTransport(CLIENT_HEADERS, body);
    assert.deepEqual(
      { status: direct.status, contentType: direct.headers['content-type'], body: JSON.parse(direct.body) as unknown },
      sdk,
      JSON.stringify(body),
    );
  }
});

test('the answer is the response to the request, not a notification the handler sent while it ran', async () => {
  const reply = await answerPlainRequest(newServer(), plainRequest(incoming(CLIENT_HEADERS), call(9, 'chatty'))!);
  const body = JSON.parse(reply.body) as { id: number; result?: unknown; method?: string };
  assert.equal(body.id, 9);
  assert.ok(body.result);
  assert.equal(body.method, undefined);
});

test('a request without the protocol version header is plain too (the transport assumes its default)', () => {
  const { 'mcp-protocol-version': _version, ...headers } = CLIENT_HEADERS;
  assert.ok(plainRequest(incoming(headers), call(1, 'echo')));
  assert.ok(plainRequest(incoming({ ...CLIENT_HEADERS, 'content-type': 'application/json; charset=utf-8' }), call(1, 'echo')));
});

test('anything the SDK transport would refuse or treat otherwise is left to it', async () => {
  const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
  // [what, headers, body, what the SDK transport answers: its status, and whether the body is a batch]
  const cases: [string, Record<string, string>, unknown, number, boolean?][] = [
    ['Accept without text/event-stream', { ...CLIENT_HEADERS, accept: 'application/json' }, call(1, 'echo'), 406],
    ['no Accept', { 'content-type': 'application/json' }, call(1, 'echo'), 406],
    ['a content type other than JSON', { ...CLIENT_HEADERS, 'content-type': 'text/plain' }, call(1, 'echo'), 415],
    ['a JSON-suffixed content type', { ...CLIENT_HEADERS, 'content-type': 'application/vnd.x+json' }, call(1, 'echo'), 415],
    ['an unsupported protocol version', { ...CLIENT_HEADERS, 'mcp-protocol-version': '1999-01-01' }, call(1, 'echo'), 400],
    ['a notification', CLIENT_HEADERS, { jsonrpc: '2.0', method: 'notifications/initialized' }, 202],
    ['a response', CLIENT_HEADERS, { jsonrpc: '2.0', id: 1, result: {} }, 202],
    ['a batch', CLIENT_HEADERS, [call(1, 'echo'), call(2, 'echo')], 200, true],
    ['not JSON-RPC 2.0', CLIENT_HEADERS, { jsonrpc: '1.0', id: 1, method: 'tools/list' }, 400],
    ['an id that is neither string nor number', CLIENT_HEADERS, { jsonrpc: '2.0', id: { x: 1 }, method: 'tools/list' }, 400],
    ['an unknown top-level field', CLIENT_HEADERS, { ...call(1, 'echo'), extra: true }, 400],
  ];
  for (const [what, headers, body, status, batch] of cases) {
    assert.equal(plainRequest(incoming(headers), body), undefined, what);
    const sdk = await viaSdkTransport(headers, body);
    assert.equal(sdk.status, status, what);
    assert.equal(Array.isArray(sdk.body), batch ?? false, what);
  }
  // Initialize starts a session (a login): it is never taken for a plain call.
  assert.equal(plainRequest(incoming(CLIENT_HEADERS), initialize), undefined);
});
