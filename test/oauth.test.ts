import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../lib/http/server.ts';
import * as ops from '../lib/ops/index.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordSecret, testRuntime, testVaultKey, type TestRuntime } from './helpers/db.ts';
import { callerOf, makeUser } from './helpers/fixtures.ts';
import { freePort } from './helpers/oauth.ts';
import { authorize, Browser, initializeStatus, pkce, register, tokenRequest } from './helpers/oauth-flow.ts';
import { mandate } from './helpers/cli.ts';
import type { User } from '../lib/db/entities/index.ts';

// Mandate as an authorization server and protected resource: its metadata, its challenges, its
// clients (pre-registered, public and confidential) and the grant tools.

let rt: TestRuntime;
let server: Server;
let base = '';
const password = recordSecret('oauth functional password 1');
let alice: User;
let admin: User;
const CALLBACK = 'https://app.example.test/callback';

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  rt = await testRuntime({ env: { MANDATE_PUBLIC_URL: base, MANDATE_OAUTH_ACCESS_TOKEN_SECONDS: '600' } });
  server = createHttpServer(rt, rt.config.http);
  await listen(server, '127.0.0.1', port);
  alice = await makeUser(rt, { roles: ['developer'] });
  admin = await makeUser(rt, { roles: ['admin'] });
  assert.ok((await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: alice.id, password })).ok);
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

describe('metadata and challenges', () => {
  test('protected-resource metadata for /mcp and each server names this authorization server (RFC 9728)', async () => {
    for (const path of ['', '/mcp', '/mcp/core', '/mcp/admin', '/mcp/pm']) {
      const response = await fetch(`${base}/.well-known/oauth-protected-resource${path}`);
      assert.equal(response.status, 200, path);
      const body = (await response.json()) as Record<string, unknown>;
      assert.equal(body.resource, `${base}${path || '/mcp'}`);
      assert.deepEqual(body.authorization_servers, [base]);
      assert.deepEqual(body.bearer_methods_supported, ['header']);
      assert.ok((body.scopes_supported as string[]).includes('mandate') && (body.scopes_supported as string[]).includes('pm:read'));
    }
    assert.equal((await fetch(`${base}/.well-known/oauth-protected-resource/api`)).status, 404);
  });

  test('authorization-server metadata (RFC 8414): S256 only, iss in responses, registration, revocation, metadata documents', async () => {
    const meta = (await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    assert.equal(meta.issuer, base);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    assert.equal(meta.client_id_metadata_document_supported, true);
    assert.deepEqual(meta.response_types_supported, ['code']);
    assert.equal(meta.registration_endpoint, `${base}/oauth/register`);
    assert.equal(meta.revocation_endpoint, `${base}/oauth/revoke`);
    assert.ok((meta.grant_types_supported as string[]).includes('refresh_token'));
    assert.ok(!(meta.grant_types_supported as string[]).includes('implicit'));
  });

  test('every 401 from an MCP endpoint points at its resource metadata and keeps the Basic challenge', async () => {
    for (const path of ['/mcp', '/mcp/core', '/mcp/admin', '/mcp/pm']) {
      const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(response.status, 401);
      const challenge = response.headers.get('www-authenticate') ?? '';
      assert.match(challenge, new RegExp(`^Bearer realm="mandate", resource_metadata="${base}/\\.well-known/oauth-protected-resource${path}", scope="mandate"`));
      assert.match(challenge, /Basic realm="mandate"/);
      assert.doesNotMatch(challenge, /error=/, 'no token, no error code');
    }
    const wrong = await initializeStatus(base, '/mcp', 'not-a-token');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  test('Mandate API tokens and passwords still work at /mcp', async () => {
    const token = await rt.runner.run(ops.createMyToken, callerOf(alice), { name: 'still works' });
    assert.ok(token.ok);
    assert.equal((await initializeStatus(base, '/mcp', recordSecret((token.value as { token: string }).token))).status, 200);
  });
});

describe('clients', () => {
  test('a pre-registered confidential client authenticates with its secret (sealed at rest); a wrong secret is invalid_client', async () => {
    const registered = await rt.runner.run(ops.registerOauthClient, callerOf(admin), { client_name: 'Acme agent', redirect_uris: [CALLBACK], confidential: true });
    assert.ok(registered.ok, !registered.ok ? registered.error.message : '');
    const client = registered.value as { client_id: string; client_secret: string; confidential: boolean; source: string };
    recordSecret(client.client_secret);
    assert.equal(client.source, 'registered');
    const stored = JSON.stringify(await rt.db.orm.em.fork().execute('select payload from oauth_record where model = ?', ['Client']));
    assert.ok(!stored.includes(client.client_secret), 'the secret is not stored in the clear');

    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base), { client_id: client.client_id, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: alice.email, password });
    const code = recordSecret(landed.searchParams.get('code')!);
    const basic = (secret: string) => `Basic ${Buffer.from(`${client.client_id}:${secret}`).toString('base64')}`;
    const send = (secret: string) =>
      fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(secret) },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier }),
      });
    const wrong = await send('not-the-secret');
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_client');
    const right = await send(client.client_secret);
    const body = (await right.json()) as { access_token: string; refresh_token: string; token_type: string };
    assert.equal(right.status, 200, JSON.stringify(body));
    recordSecret(body.access_token);
    recordSecret(body.refresh_token);
    assert.equal(body.token_type, 'Bearer');
    assert.equal((await initializeStatus(base, '/mcp/core', body.access_token)).status, 200);
    const rows = JSON.stringify(await rt.db.orm.em.fork().execute('select key, payload from oauth_record'));
    for (const secret of [body.access_token, body.refresh_token, code]) assert.ok(!rows.includes(secret), 'codes and tokens are stored only as hashes');
  });

  test('the client tools: listed without secrets; only with tokens:read / tokens:write', async () => {
    const listed = await rt.runner.run(ops.listOauthClients, callerOf(admin), {});
    assert.ok(listed.ok);
    assert.ok(!JSON.stringify(listed.value).includes('client_secret'));
    const denied = await rt.runner.run(ops.registerOauthClient, callerOf(alice), { client_name: 'mine', redirect_uris: [CALLBACK] });
    assert.ok(!denied.ok && denied.error.code === 'forbidden' && /tokens:write/.test(denied.error.message), !denied.ok ? denied.error.message : '');
    const bad = await rt.runner.run(ops.registerOauthClient, callerOf(admin), { client_name: 'bad', redirect_uris: ['http://evil.example.test/cb'] });
    assert.ok(!bad.ok && bad.error.field === 'redirect_uris.0', !bad.ok ? bad.error.message : '');
  });

  test('registrations can be switched off (MANDATE_OAUTH_DCR=off): 403, and the metadata offers none', async () => {
    const port = await freePort();
    const off = await testRuntime({ env: { MANDATE_PUBLIC_URL: `http://127.0.0.1:${port}`, MANDATE_OAUTH_DCR: 'off' } });
    const offServer = createHttpServer(off, off.config.http);
    await listen(offServer, '127.0.0.1', port);
    try {
      const refused = await register(`http://127.0.0.1:${port}`, { redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' });
      assert.equal(refused.status, 403);
      const meta = (await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
      assert.equal(meta.registration_endpoint, undefined);
    } finally {
      offServer.closeAllConnections();
      await new Promise((resolve) => offServer.close(resolve));
      await off.close();
    }
  });

  test('without MANDATE_PUBLIC_URL there is no authorization server: no metadata, the plain challenge', async () => {
    const plain = await testRuntime();
    const plainServer = createHttpServer(plain, plain.config.http);
    const { port } = await listen(plainServer, '127.0.0.1', 0);
    try {
      assert.equal(plain.oauth, null);
      assert.equal((await fetch(`http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/oauth/register`, { method: 'POST' })).status, 404);
      const challenge = (await fetch(`http://127.0.0.1:${port}/mcp`, { method: 'POST', body: '{}' })).headers.get('www-authenticate');
      assert.equal(challenge, 'Bearer realm="mandate", Basic realm="mandate", charset="UTF-8"');
    } finally {
      plainServer.closeAllConnections();
      await new Promise((resolve) => plainServer.close(resolve));
      await plain.close();
    }
  });

  test('mandate oauth-client add and list (CLI): the secret once, on its own last line', async () => {
    const env = { ...rtEnv() };
    const added = await mandate(['oauth-client', 'add', '--name', 'CLI client', '--redirect-uri', CALLBACK, '--confidential'], env);
    assert.equal(added.code, 0, added.stderr);
    const lines = added.stdout.trim().split('\n');
    const secret = recordSecret(lines.at(-1)!);
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    const listed = await mandate(['oauth-client', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /"client_name": "CLI client"/);
    assert.ok(!listed.stdout.includes(secret));
    const usage = await mandate(['oauth-client', 'add', '--name', 'no redirect'], env);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--redirect-uri is required/);
  });
});

describe('connected applications', () => {
  test('users list and revoke their own grants; admins list a user\'s; API token tools do not show them', async () => {
    const registered = await register(base, { client_name: 'Listed app', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' });
    const clientId = String(registered.body.client_id);
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/pm`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: alice.email, password });
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    assert.equal((await initializeStatus(base, '/mcp/pm', String(exchanged.body.access_token))).status, 200);

    const mine = await rt.runner.run(ops.listMyOauthGrants, callerOf(alice), {});
    assert.ok(mine.ok);
    const grant = (mine.value as { items: Record<string, unknown>[] }).items.find((g) => g.client_id === clientId)!;
    assert.equal(grant.client_name, 'Listed app');
    assert.equal(grant.resource, `${base}/mcp/pm`);
    assert.equal(grant.permissions, null, 'the mandate scope: all of the user\'s own');
    assert.notEqual(grant.last_used_at, null, 'the access token was used');
    const theirs = await rt.runner.run(ops.listUserOauthGrants, callerOf(admin), { user_id: alice.id });
    assert.ok(theirs.ok && (theirs.value as { items: { id: string }[] }).items.some((g) => g.id === grant.id));
    const stranger = await rt.runner.run(ops.listUserOauthGrants, callerOf(alice), { user_id: admin.id });
    assert.ok(!stranger.ok && /tokens:read/.test(stranger.error.message));
    const tokens = await rt.runner.run(ops.listMyTokens, callerOf(alice), { include_revoked: true });
    assert.ok(tokens.ok && !(tokens.value as { items: { id: string }[] }).items.some((t) => t.id === grant.id));
    const viaTokenTool = await rt.runner.run(ops.revokeMyToken, callerOf(alice), { token_id: String(grant.id) });
    assert.ok(!viaTokenTool.ok && viaTokenTool.error.code === 'not_found');

    const revoked = await rt.runner.run(ops.revokeUserOauthGrant, callerOf(admin), { user_id: alice.id, grant_id: String(grant.id) });
    assert.ok(revoked.ok);
    assert.equal((await initializeStatus(base, '/mcp/pm', String(exchanged.body.access_token))).status, 401);
    const again = await rt.runner.run(ops.revokeMyOauthGrant, callerOf(alice), { grant_id: String(grant.id) });
    assert.ok(again.ok, 'idempotent');
  });
});

function rtEnv(): Record<string, string> {
  const db = rt.config.database;
  // The CLI opens its own runtime: on PGlite that needs a data dir of its own (one process each).
  const where: Record<string, string> = db.kind === 'postgresql' ? { DATABASE_URL: db.url } : { MANDATE_DATA_DIR: mkdtempSync(join(tmpdir(), 'mandate-oauth-cli-')) };
  return { ...where, MANDATE_VAULT_KEY: testVaultKey('cli'), MANDATE_LOG_LEVEL: 'warn' };
}
