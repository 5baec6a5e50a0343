import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { callerOf, makeToken, makeUser } from './helpers/fixtures.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { mcpSession, type McpSession } from './helpers/mcp.ts';

// Protocol errors as the specification lists them (2025-11-25, "Error Handling"): a malformed
// request and an unknown tool are -32602 with a message naming what is wrong, never -32603.

let rt: TestRuntime;
let session: McpSession;
before(async () => {
  rt = await testRuntime();
  const user = await makeUser(rt, { roles: ['developer'] });
  const { token, raw } = await makeToken(rt, user);
  recordSecret(raw);
  session = await mcpSession(rt, callerOf(user, token.id), ['core', 'pm']);
});
after(async () => {
  await session.close();
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
