import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { callerOf, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mcpSession, type McpSession } from './helpers/mcp.ts';

// Protocol errors as the specification lists them (2025-11-25, "Error Handling"): a malformed
// request and an unknown tool are -32602 with a message naming what is wrong, never -32603.

let rt: TestRuntime;
let session: McpSession;
let http: Server;
let base: string;
let token: string;
before(async () => {
  rt = await testRuntime();
  const user = await makeUser(rt, { roles: ['developer'] });
  const made = await makeToken(rt, user);
  token = recordSecret(made.raw);
  session = await mcpSession(rt, callerOf(user, made.token.id), ['core', 'pm']);
  http = createHttpServer(rt);
  base = `http://127.0.0.1:${(await listen(http, '127.0.0.1', 0)).port}`;
});
after(async () => {
  await session.close();
  http.closeAllConnections();
  await new Promise((resolve) => http.close(resolve));
  await rt.close();
});

/** A JSON-RPC error as the client received it, and proof it is not the SDK's zod issue dump. */
function plainInvalidParams(field: string) {
  return (error: unknown) => {
    const { code, message, data } = error as { code: number; message: string; data?: { code: string; field?: string } };
    assert.equal(code, -32602, message);
    assert.ok(message.includes(field), `names ${field}: ${message}`);
    assert.doesNotMatch(message, /"code"\s*:|invalid_type|"path"\s*:|\n/, 'no zod issue dump');
    assert.equal(data?.field, field);
    return true;
  };
}

describe('malformed requests are -32602 naming the field', () => {
  test('tools/call without params.name', async () => {
    await assert.rejects(session.request('tools/call', { arguments: {} }), plainInvalidParams('params.name'));
  });

  test('tools/call with a name that is not a string, and with arguments that are not an object', async () => {
    await assert.rejects(session.request('tools/call', { name: 42 }), plainInvalidParams('params.name'));
    await assert.rejects(session.request('tools/call', { name: 'whoami', arguments: 'x' }), plainInvalidParams('params.arguments'));
  });

  test('tools/call without params at all', async () => {
    await assert.rejects(session.request('tools/call'), plainInvalidParams('params'));
  });

  test('a deeply nested malformed params object is answered, not a crash', async () => {
    let nested: Record<string, unknown> = {};
    for (let i = 0; i < 2000; i++) nested = { a: nested };
    await assert.rejects(session.request('tools/call', { name: nested }), plainInvalidParams('params.name'));
    assert.ok((await session.toolNames()).includes('whoami'), 'the session still works');
  });
});

describe('an unknown tool is a protocol error', () => {
  test('-32602 with the name and not_found on params.name', async () => {
    await assert.rejects(session.call('no_such_tool'), (error: { code: number; message: string; data: { code: string; field: string } }) => {
      assert.equal(error.code, -32602);
      assert.match(error.message, /unknown tool "no_such_tool"/);
      assert.deepEqual(error.data, { code: 'not_found', field: 'params.name' });
      return true;
    });
  });

  test('a tool Mandate has but this server does not serve stays an audited tool error naming why', async () => {
    const result = await session.call('create_user', { email: 'x@example.test' });
    assert.equal(result.isError, true);
    assert.match(JSON.stringify(result.content), /forbidden/);
  });
});

describe('transport errors on /mcp are JSON-RPC error bodies with the HTTP status of their cause', () => {
  const jsonHeaders = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
  const call = (id: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } });

  async function send(method: string, path: string, headers: Record<string, string>, body?: string) {
    const response = await fetch(`${base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    assert.ok(!text.includes(token), 'the token is never echoed');
    return { status: response.status, headers: response.headers, body: JSON.parse(text) as { jsonrpc: string; id: unknown; error: { code: number; message: string; data: { code: string; field?: string } } } };
  }

  function assertRpcError(answer: Awaited<ReturnType<typeof send>>, status: number, code: number, id: unknown, mandateCode: string) {
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.equal(answer.body.jsonrpc, '2.0');
    assert.equal(answer.body.id, id);
    assert.equal(answer.body.error.code, code);
    assert.equal(answer.body.error.data.code, mandateCode);
    assert.ok(answer.body.error.message.length > 10);
    assert.doesNotMatch(answer.body.error.message, /\n\s+at /, 'no stack trace');
  }

  test('a request without mcp-session-id that is not initialize: 400, -32600, its id, the header named', async () => {
    const answer = await send('POST', '/mcp', jsonHeaders(), call(7));
    assertRpcError(answer, 400, -32600, 7, 'invalid_input');
    assert.equal(answer.body.error.data.field, 'mcp-session-id');
  });

  test('an unknown, a malformed and an ended session: 404, -32001 (initialize again)', async () => {
    for (const sessionId of [randomUUID(), 'not-a-uuid', '%00', 'x'.repeat(4000)]) {
      assertRpcError(await send('POST', '/mcp', { ...jsonHeaders(), 'mcp-session-id': sessionId }, call('s1')), 404, -32001, 's1', 'not_found');
    }
    const init = await fetch(`${base}/mcp`, { method: 'POST', headers: jsonHeaders(), body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }) });
    const sessionId = init.headers.get('mcp-session-id')!;
    await init.text();
    assert.equal((await fetch(`${base}/mcp`, { method: 'DELETE', headers: { ...jsonHeaders(), 'mcp-session-id': sessionId } })).status, 204);
    assertRpcError(await send('POST', '/mcp', { ...jsonHeaders(), 'mcp-session-id': sessionId }, call(3)), 404, -32001, 3, 'not_found');
  });

  test('a body that is not JSON: 400, -32700 Parse error, id null', async () => {
    for (const body of ['{ not json', '{"jsonrpc":"2.0","id":1,', '\u0000']) {
      assertRpcError(await send('POST', '/mcp', jsonHeaders(), body), 400, -32700, null, 'invalid_input');
    }
  });

  test('a batch, a non-object body and a non-JSON content type: 400, -32600', async () => {
    assertRpcError(await send('POST', '/mcp', jsonHeaders(), `[${call(1)}]`), 400, -32600, null, 'invalid_input');
    assertRpcError(await send('POST', '/mcp', jsonHeaders(), '"text"'), 400, -32600, null, 'invalid_input');
    assertRpcError(await send('POST', '/mcp', { ...jsonHeaders(), 'content-type': 'text/plain' }, call(2)), 400, -32600, null, 'invalid_input');
  });

  test('a body over the limit: 413, -32600', async () => {
    assertRpcError(await send('POST', '/mcp', jsonHeaders(), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', pad: 'x'.repeat(1_100_000) })), 413, -32600, null, 'too_large');
  });

  test('GET and other methods: 405 with Allow, -32000', async () => {
    for (const method of ['GET', 'PUT', 'PATCH']) {
      const answer = await send(method, '/mcp', { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream' });
      assertRpcError(answer, 405, -32000, null, 'method_not_allowed');
      assert.equal(answer.headers.get('allow'), 'POST, DELETE');
    }
  });

  test('no or bad credentials: 401 with WWW-Authenticate, and the request id', async () => {
    for (const authorization of [undefined, 'Bearer mnd_not_a_real_token_000000', 'Basic bm9ib2R5Om5vcGU=']) {
      const headers: Record<string, string> = { ...jsonHeaders() };
      if (authorization) headers.authorization = authorization;
      else delete headers.authorization;
      const answer = await send('POST', '/mcp', headers, call(11));
      assertRpcError(answer, 401, -32000, 11, 'unauthenticated');
      assert.match(answer.headers.get('www-authenticate') ?? '', /Bearer/);
    }
  });

  test('a path with no MCP server and a foreign Host: JSON-RPC bodies too', async () => {
    assertRpcError(await send('POST', '/mcp/billing', jsonHeaders(), call(1)), 404, -32001, null, 'not_found');
    const { port } = new URL(base);
    const { request } = await import('node:http');
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { ...jsonHeaders(), host: 'evil.example.com' } }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end(call(1));
    });
    assert.equal(answer.status, 403);
    const parsed = JSON.parse(answer.body);
    assert.deepEqual([parsed.jsonrpc, parsed.error.code, parsed.error.data.code, parsed.error.data.field], ['2.0', -32000, 'forbidden', 'Host']);
  });
});
