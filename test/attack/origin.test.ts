import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { makeToken, makeUser } from '../helpers/fixtures.ts';
import { keepArtifact, recordSecret } from '../helpers/db.ts';
import { ROOT } from '../helpers/stdio.ts';
import { attackRig, bearer, type Person, type Rig } from './rig.ts';

// Finding 4: DNS rebinding. A page on evil.example whose name resolves to this machine must not
// reach /mcp or /api through the user's browser: a foreign Host or Origin is a 403 before
// anything runs, with or without a service account; the service account answers only requests
// with no Authorization header at all.

let rig: Rig;
let serviceId = '';
let person: Person;
before(async () => {
  rig = await attackRig({
    http: async (rt) => {
      const service = await makeUser(rt, { roles: ['developer'], type: 'service', email: `service-${Date.now()}@example.test` });
      serviceId = service.id;
      return { serviceToken: recordSecret((await makeToken(rt, service)).raw), allowedOrigins: ['https://app.example.test'] };
    },
  });
  person = await rig.person(['pm:read']);
});
after(() => rig.close());

const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'rebinding', version: '1' } } });

/** A raw request, so Host can be anything (fetch will not set it). */
function raw(method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const { port } = new URL(rig.base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...(body ? { 'content-type': 'application/json', accept: 'application/json, text/event-stream' } : {}), ...headers } }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => {
        keepArtifact('http-response', text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const serviceTrace = async () =>
  Number((await rig.rt.db.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from audit_event where actor_id = ?', [serviceId]))[0]!.n) +
  Number((await rig.rt.db.orm.em.fork().execute<{ n: string }[]>('select count(*) as n from mcp_session where user_id = ?', [serviceId]))[0]!.n);

describe('finding 4: Host and Origin are checked before anything runs', () => {
  test('a foreign Host or Origin gets 403, with a service account configured and without credentials, and leaves no trace', async () => {
    const { port } = new URL(rig.base);
    await rig.rt.runner.audit.flush();
    const before = await serviceTrace();
    const cases: Record<string, string>[] = [
      { host: `evil.example.com:${port}`, origin: `http://evil.example.com:${port}` },
      { host: `evil.example.com:${port}` },
      { host: `127.0.0.1:${port}`, origin: 'http://evil.example.com' },
      { host: `localhost.evil.example.com:${port}` },
      { host: `127.0.0.1:${port}`, origin: 'null' },
      { host: `127.0.0.1:${port}`, origin: `http://localhost:${Number(port) + 1}` },
    ];
    for (const headers of cases) {
      for (const [method, path, body] of [['POST', '/mcp', initialize], ['GET', '/api/me', undefined], ['POST', '/api/agent-sessions', '{"role":"agent"}']] as const) {
        const answer = await raw(method, path, headers, body);
        assert.equal(answer.status, 403, `${method} ${path} ${JSON.stringify(headers)}: ${answer.text}`);
        const { error } = JSON.parse(answer.text);
        // /mcp answers with a JSON-RPC error body carrying Mandate's error as data; /api with Mandate's error.
        const mandate = path === '/mcp' ? error.data : error;
        if (path === '/mcp') assert.equal(error.code, -32000);
        assert.equal(mandate.code, 'forbidden');
        assert.ok(mandate.field === 'Host' || mandate.field === 'Origin');
      }
      // With credentials too.
      assert.equal((await raw('GET', '/api/me', { ...headers, ...bearer(person.token) })).status, 403);
    }
    await rig.rt.runner.audit.flush();
    assert.equal(await serviceTrace(), before, 'no session, no call, no agent as the service account');
  });

  test('this server\'s own names and origins pass; an allowed origin gets CORS headers; preflights are answered', async () => {
    const { port } = new URL(rig.base);
    const variants: Record<string, string>[] = [{ host: `127.0.0.1:${port}` }, { host: `localhost:${port}`, origin: `http://localhost:${port}` }, { host: `[::1]:${port}` }, { host: 'app.example.test', origin: 'https://app.example.test' }];
    for (const headers of variants) {
      const answer = await raw('GET', '/api/me', { ...headers, ...bearer(person.token) });
      assert.equal(answer.status, 200, `${JSON.stringify(headers)}: ${answer.text}`);
      if (headers.origin) {
        assert.equal(answer.headers['access-control-allow-origin'], headers.origin);
        assert.match(String(answer.headers['access-control-expose-headers']), /mcp-session-id/);
      }
    }
    const preflight = await raw('OPTIONS', '/mcp', { host: 'app.example.test', origin: 'https://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, mcp-session-id' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.test');
    assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
    assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
    const foreign = await raw('OPTIONS', '/mcp', { host: `127.0.0.1:${port}`, origin: 'https://evil.example.com', 'access-control-request-method': 'POST' });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });

  test('an empty or blank Authorization header is a malformed credential, never the service account', async () => {
    for (const authorization of ['', '   ', 'Bearer', 'Basic ']) {
      const answer = await raw('GET', '/api/me', { authorization });
      assert.equal(answer.status, 401, `${JSON.stringify(authorization)}: ${answer.text}`);
    }
    const none = await raw('GET', '/api/me', {});
    assert.equal(none.status, 200, 'no header at all: the service account');
    assert.equal(JSON.parse(none.text).user.id, serviceId);
  });

  test('the official conformance scenario dns-rebinding-protection passes', async () => {
    const cli = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
    // Not spawnSync: this process serves the requests the scenario makes.
    const result = await promisify(execFile)(process.execPath, [cli, 'server', '--url', `${rig.base.replace('127.0.0.1', 'localhost')}/mcp`, '--scenario', 'dns-rebinding-protection'], { encoding: 'utf8', timeout: 60_000 })
      .then(({ stdout, stderr }) => ({ code: 0, output: `${stdout}\n${stderr}` }), (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout}\n${error.stderr}` }));
    keepArtifact('conformance', result.output);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /Passed: 2\/2, 0 failed/);
  });
});
