import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { discoverAuthorizationServerMetadata, refreshAuthorization, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidGrantError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import * as ops from '../lib/ops/index.ts';
import { keepArtifact, recordSecret, TEST_DB } from './helpers/db.ts';
import { authorize, Browser, initializeStatus, pkce, register, tokenRequest } from './helpers/oauth-flow.ts';
import { processDatabase, type ProcessDatabase } from './helpers/stdio.ts';
import { startServe, type ServeProcess } from './helpers/serve.ts';
import { callbackServer, freePort, httpsOnLoopback, launchBrowser, MemoryOAuthProvider, NO_BROWSER, signInAndAllow } from './helpers/oauth.ts';

// The whole MCP authorization flow against a real `mandate serve`, with the official SDK client's
// OAuth support and a real browser on Mandate's own sign-in and consent pages: 401 → protected
// resource metadata → authorization server metadata → registration (DCR, then a client ID
// metadata document) → authorize (sign in, consent) → token → tools/call → refresh → reuse and
// revocation refused.

let db: ProcessDatabase;
let serve: ServeProcess;
let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
let context: Awaited<ReturnType<NonNullable<typeof browser>['newContext']>>;
let cimd: Awaited<ReturnType<typeof httpsOnLoopback>> | undefined;
let callbacks: Awaited<ReturnType<typeof callbackServer>>;
const password = recordSecret('oauth e2e password 1');
const email = 'oauth-e2e@example.test';
let base = '';
let consented = false;

before(async () => {
  if (NO_BROWSER) return;
  db = await processDatabase();
  await db.use(async (rt) => {
    const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email, password, roles: ['developer'] });
    assert.ok(created.ok);
  });
  callbacks = await callbackServer();
  cimd = await httpsOnLoopback((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' });
    // /plain-http.json names a redirect in the clear on another host: refused like any client's.
    const plain = req.url === '/plain-http.json';
    res.end(JSON.stringify({
      client_id: `${cimdBase()}${plain ? '/plain-http.json' : '/client.json'}`,
      client_name: 'Metadata document client',
      redirect_uris: [plain ? 'http://evil.example.test/cb' : callbacks.redirectUrl],
      // The plain-http document is a web client: the library refuses http for native ones itself,
      // for web ones the rule is Mandate's.
      ...(plain ? {} : { application_type: 'native' }),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    }));
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  serve = await startServe({ ...db.env, MANDATE_PUBLIC_URL: base, MANDATE_OAUTH_CIMD_ALLOW_NETWORKS: 'loopback', NODE_EXTRA_CA_CERTS: cimd.caFile }, port);
  browser = await launchBrowser();
  // One browser profile for the whole file: Mandate's session cookie carries over between tests.
  context = await browser.newContext();
});
after(async () => {
  await browser?.close();
  await serve?.stop();
  await callbacks?.close();
  cimd?.server.close();
  // The server's audit rows go to the secret sweep: no code or token may be in one.
  await db?.use(async (rt) => {
    const rows = (await rt.db.orm.em.fork().execute('select * from audit_event')) as { operation: string }[];
    keepArtifact('audit', JSON.stringify(rows));
    if (consented) assert.ok(rows.some((row) => row.operation === 'oauth_consent'), 'the consent is audited');
  });
  await db?.dispose();
});

const cimdBase = () => cimd!.url;

/** Connects the SDK client as far as it goes without a user: it must stop at the authorization step. */
async function connectUntilAuthorization(provider: MemoryOAuthProvider, path: string) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}${path}`), { authProvider: provider });
  const client = new Client({ name: 'oauth-e2e', version: '1.0.0' });
  await assert.rejects(client.connect(transport), (error: unknown) => error instanceof UnauthorizedError);
  assert.ok(provider.authorizationUrl, 'the SDK reached the authorization step');
  return transport;
}

async function connected(provider: MemoryOAuthProvider, path: string) {
  const client = new Client({ name: 'oauth-e2e', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}${path}`), { authProvider: provider }));
  return client;
}

/** An MCP initialize with the token: 200 when it is accepted at `path`. */
async function initializeWith(accessToken: string, path = '/mcp/core'): Promise<Response> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oauth-e2e', version: '1' } } }),
  });
  keepArtifact('http-response', await response.clone().text());
  return response;
}

test('DCR: the SDK client registers, the user signs in and consents in a browser, and the token calls whoami as that user; refresh rotates, reuse revokes', { skip: NO_BROWSER }, async () => {
  const provider = new MemoryOAuthProvider(callbacks.redirectUrl);
  const transport = await connectUntilAuthorization(provider, '/mcp/core');
  const url = provider.authorizationUrl!;
  assert.equal(url.origin, base);
  assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(url.searchParams.get('resource'), `${base}/mcp/core`);
  assert.match(String(provider.clientInformation()?.client_id), /^dcr-/);

  const page = await context.newPage();
  const answered = callbacks.next();
  await signInAndAllow(page, url, { email, password });
  const callback = await answered;
  consented = true;
  assert.equal(callback.searchParams.get('iss'), base, 'RFC 9207: the response names its issuer');
  const code = recordSecret(callback.searchParams.get('code')!);
  await transport.finishAuth(code);
  const first = provider.tokens()!;
  assert.ok(first.refresh_token, 'a refresh token is issued');
  assert.ok(first.expires_in! <= 3600, 'access tokens are short-lived');

  const client = await connected(provider, '/mcp/core');
  const me = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal((me.structuredContent as { user: { email: string } }).user.email, email);
  await client.close();

  const metadata = (await discoverAuthorizationServerMetadata(base))!;
  const clientInformation = provider.clientInformation()!;
  const second = await refreshAuthorization(base, { metadata, clientInformation, refreshToken: first.refresh_token!, resource: new URL(`${base}/mcp/core`) });
  recordSecret(second.access_token);
  recordSecret(second.refresh_token!);
  assert.notEqual(second.refresh_token, first.refresh_token, 'the refresh token rotates');
  assert.equal((await initializeWith(second.access_token)).status, 200);

  // The old refresh token again: refused, and the whole family goes with it.
  await assert.rejects(
    refreshAuthorization(base, { metadata, clientInformation, refreshToken: first.refresh_token!, resource: new URL(`${base}/mcp/core`) }),
    (error: unknown) => error instanceof InvalidGrantError,
  );
  assert.equal((await initializeWith(second.access_token)).status, 401, 'reuse revoked the grant: the newest access token is dead too');
  await page.close();
});

test('client ID metadata document: the client is its https URL, the browser session is remembered (consent is one click), and revocation ends access', { skip: NO_BROWSER }, async () => {
  const provider = new MemoryOAuthProvider(callbacks.redirectUrl, { clientMetadataUrl: `${cimdBase()}/client.json` });
  const transport = await connectUntilAuthorization(provider, '/mcp');
  assert.equal(provider.authorizationUrl!.searchParams.get('client_id'), `${cimdBase()}/client.json`);

  // The same browser profile as the first test: signed in already, so consent is the one step.
  const page = await context.newPage();
  const answered = callbacks.next();
  await page.goto(provider.authorizationUrl!.toString());
  assert.match((await page.locator('body').textContent()) ?? '', /Allow Metadata document client/);
  assert.match(await page.content(), /127\.0\.0\.1/, 'the consent page names the redirect host');
  await page.getByRole('button', { name: 'Allow' }).click();
  const callback = await answered;
  await transport.finishAuth(recordSecret(callback.searchParams.get('code')!));
  const tokens = provider.tokens()!;

  const client = await connected(provider, '/mcp');
  const me = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal((me.structuredContent as { user: { email: string } }).user.email, email);
  await client.close();
  assert.equal((await initializeWith(tokens.access_token, '/mcp/core')).status, 401, 'a token for /mcp is refused at /mcp/core');

  const revoked = await fetch(`${base}/oauth/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tokens.refresh_token!, token_type_hint: 'refresh_token', client_id: `${cimdBase()}/client.json` }),
  });
  assert.equal(revoked.status, 200);
  const after = await initializeWith(tokens.access_token, '/mcp');
  assert.equal(after.status, 401, 'revoking the refresh token revokes the grant and its access tokens');
  assert.match(after.headers.get('www-authenticate') ?? '', /^Bearer .*resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp".*error="invalid_token"/);
  await page.close();
});

test('two instances on one PostgreSQL: a token issued by one works at the other, and a revocation at one is refused by the other at the next request', { skip: NO_BROWSER || (TEST_DB !== 'postgres' && 'PGlite serves one process') }, async () => {
  const port = await freePort();
  // The same deployment (same issuer) on a second port, as behind a load balancer.
  const second = await startServe({ ...db.env, MANDATE_PUBLIC_URL: base }, port);
  try {
    const other = `http://127.0.0.1:${port}`;
    const callback = 'http://127.0.0.1:9/callback';
    const client = await register(base, { client_name: 'two instances', redirect_uris: [callback], token_endpoint_auth_method: 'none' });
    const clientId = String(client.body.client_id);
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base), { client_id: clientId, redirect_uri: callback, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email, password });
    const tokens = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: callback, code_verifier: verifier, client_id: clientId });
    const access = String(tokens.body.access_token);
    assert.equal((await initializeStatus(other, '/mcp/core', access)).status, 200, 'accepted by the other instance');
    const revoked = await fetch(`${base}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: access, client_id: clientId }) });
    assert.equal(revoked.status, 200);
    assert.equal((await initializeStatus(other, '/mcp/core', access)).status, 401, 'refused there at once');
  } finally {
    await second.stop();
  }
});

test('a client metadata document with a plain-http redirect off loopback is refused, like any client', { skip: NO_BROWSER }, async () => {
  const response = await fetch(`${base}/oauth/authorize?${new URLSearchParams({ client_id: `${cimdBase()}/plain-http.json`, response_type: 'code', redirect_uri: 'http://evil.example.test/cb', scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`, { redirect: 'manual' });
  assert.equal(response.status, 400);
  assert.equal(response.headers.get('location'), null);
  assert.match(await response.text(), /invalid_client/);
});
