import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../../lib/http/server.ts';
import { ApiToken, OAuthRecord } from '../../lib/db/entities/index.ts';
import * as ops from '../../lib/ops/index.ts';
import { recordSecret, testRuntime, type TestRuntime } from '../helpers/db.ts';
import { callerOf, makeUser } from '../helpers/fixtures.ts';
import { freePort, httpsOnLoopback } from '../helpers/oauth.ts';
import { authorize, Browser, formOf, initializeStatus, pkce, register, tokenRequest } from '../helpers/oauth-flow.ts';
import type { User } from '../../lib/db/entities/index.ts';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { errorOfToolResult } from '../../lib/mcp/server.ts';
import { limiterKey } from '../../lib/oauth/registration-limiter.ts';

// The OAuth authorization server probed as an attacker would: redirect URIs, PKCE, replayed codes
// and refresh tokens, tokens carried to another resource, forged consent, open redirects, SSRF
// through client metadata documents, registration floods, password guessing, framing.

let rt: TestRuntime;
let server: Server;
let base = '';
const password = recordSecret('oauth attack password 1');
let alice: User;
let aliceEmail = '';
const CALLBACK = 'http://127.0.0.1:9/callback';
let counter = 0;
const address = () => `198.51.100.${++counter}`;

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Trackers may be on loopback here: client metadata documents still may not (their own policy).
  rt = await testRuntime({ env: { MANDATE_PUBLIC_URL: base, MANDATE_TRUST_PROXY: 'true', MANDATE_OAUTH_DCR_PER_HOUR: '8', MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
  server = createHttpServer(rt, rt.config.http);
  await listen(server, '127.0.0.1', port);
  alice = await makeUser(rt, { roles: ['developer'] });
  aliceEmail = alice.email;
  const set = await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: alice.id, password });
  assert.ok(set.ok, !set.ok ? set.error.message : '');
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
});

async function publicClient(redirects = [CALLBACK], extra: Record<string, unknown> = {}): Promise<string> {
  const registered = await register(base, { client_name: `attack client ${++counter}`, redirect_uris: redirects, token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], ...extra }, { 'x-forwarded-for': address() });
  assert.equal(registered.status, 201, JSON.stringify(registered.body));
  return String(registered.body.client_id);
}

/** A full authorization for alice: code, then tokens. */
async function tokensFor(clientId: string, resource = `${base}/mcp/core`) {
  const { verifier, challenge } = pkce();
  const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password });
  const code = recordSecret(landed.searchParams.get('code') ?? '');
  assert.ok(code, `a code: ${landed}`);
  const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId, resource });
  assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
  return { code, verifier, access: String(exchanged.body.access_token), refresh: String(exchanged.body.refresh_token) };
}

const oauthRows = () => rt.db.orm.em.fork().count(ApiToken, { oauthGrantId: { $ne: null } });

describe('redirect URIs', () => {
  test('an unregistered, extended or extra redirect URI gets an error page here, never a redirect to it', async () => {
    const clientId = await publicClient(['https://app.example.test/cb']);
    const { challenge } = pkce();
    for (const redirect of ['https://evil.example.test/cb', 'https://app.example.test/cb/more', 'https://app.example.test/cb?x=1', 'https://app.example.test.evil.test/cb', 'https://app.example.test/cb#frag']) {
      const response = await new Browser(base).get(new Browser(base).authorizeUrl({ client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256', scope: 'mandate' }));
      assert.equal(response.status, 400, redirect);
      assert.equal(response.headers.get('location'), null, `${redirect}: no redirect`);
      assert.match(await response.text(), /redirect_uri/);
    }
  });

  test('an unknown client is an error page (no redirect, whatever redirect_uri says)', async () => {
    const response = await new Browser(base).get(new Browser(base).authorizeUrl({ client_id: 'dcr-unknown', redirect_uri: 'https://evil.example.test/cb', code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
    assert.equal(response.status, 400);
    assert.equal(response.headers.get('location'), null);
  });

  test('a loopback redirect may use any port for a native client (RFC 8252), but not another host or path', async () => {
    const clientId = await publicClient(['http://127.0.0.1:33418/callback']);
    const { challenge } = pkce();
    const ok = await new Browser(base).get(new Browser(base).authorizeUrl({ client_id: clientId, redirect_uri: 'http://127.0.0.1:51234/callback', code_challenge: challenge, code_challenge_method: 'S256', scope: 'mandate' }));
    assert.equal(ok.status, 303);
    assert.match(ok.headers.get('location') ?? '', /^\/oauth\/interaction\//);
    for (const redirect of ['http://127.0.0.1:51234/other', 'http://192.0.2.1:33418/callback']) {
      const refused = await new Browser(base).get(new Browser(base).authorizeUrl({ client_id: clientId, redirect_uri: redirect, code_challenge: challenge, code_challenge_method: 'S256' }));
      assert.equal(refused.status, 400, redirect);
    }
  });

  test('custom schemes (cursor://) and https callbacks (claude.ai) register', async () => {
    await publicClient(['cursor://anysphere.cursor-mcp/oauth/callback']);
    await publicClient(['https://claude.ai/api/mcp/auth_callback']);
    const refused = await register(base, { redirect_uris: ['javascript:alert(1)'], token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': address() });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_redirect_uri');
  });
});

describe('PKCE and codes', () => {
  test('a request without PKCE, or with plain, is refused at the client with invalid_request and no code', async () => {
    const clientId = await publicClient();
    for (const extra of [{}, { code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }]) {
      const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', ...extra }, null).catch(() => null);
      assert.ok(landed instanceof URL, 'the error goes to the registered redirect');
      assert.equal(landed.searchParams.get('error'), 'invalid_request');
      assert.equal(landed.searchParams.get('code'), null);
      assert.equal(landed.searchParams.get('iss'), base);
    }
  });

  test('a wrong code_verifier is refused', async () => {
    const clientId = await publicClient();
    const { challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password });
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: pkce().verifier, client_id: clientId });
    assert.equal(exchanged.status, 400);
    assert.equal(exchanged.body.error, 'invalid_grant');
  });

  test('a replayed code fails, and revokes what its first use issued', async () => {
    const clientId = await publicClient();
    const first = await tokensFor(clientId);
    assert.equal((await initializeStatus(base, '/mcp/core', first.access)).status, 200);
    const replay = await tokenRequest(base, { grant_type: 'authorization_code', code: first.code, redirect_uri: CALLBACK, code_verifier: first.verifier, client_id: clientId });
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, 'invalid_grant');
    assert.equal((await initializeStatus(base, '/mcp/core', first.access)).status, 401, 'the first access token is dead');
    const refreshed = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: first.refresh, client_id: clientId });
    assert.equal(refreshed.body.error, 'invalid_grant', 'and so is its refresh token');
    const rows = await rt.auditRows();
    assert.ok(rows.some((row) => row.operation === 'oauth_reuse_detected'), 'the replay is audited');
  });

  test('a reused refresh token fails and revokes the whole family', async () => {
    const clientId = await publicClient();
    const first = await tokensFor(clientId);
    const second = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: first.refresh, client_id: clientId });
    assert.equal(second.status, 200);
    assert.notEqual(second.body.refresh_token, first.refresh);
    assert.equal((await initializeStatus(base, '/mcp/core', String(second.body.access_token))).status, 200);
    const reuse = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: first.refresh, client_id: clientId });
    assert.equal(reuse.body.error, 'invalid_grant');
    assert.equal((await initializeStatus(base, '/mcp/core', String(second.body.access_token))).status, 401);
    const third = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: String(second.body.refresh_token), client_id: clientId });
    assert.equal(third.body.error, 'invalid_grant', 'the rotated refresh token is revoked too');
  });
});

describe('resources (RFC 8707)', () => {
  test('a token for one MCP endpoint is refused at every other, and at the REST API', async () => {
    const clientId = await publicClient();
    const { access } = await tokensFor(clientId, `${base}/mcp/pm`);
    assert.equal((await initializeStatus(base, '/mcp/pm', access)).status, 200);
    for (const path of ['/mcp', '/mcp/core', '/mcp/admin']) {
      const refused = await initializeStatus(base, path, access);
      assert.equal(refused.status, 401, path);
      assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
    const rest = await fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${access}` } });
    assert.equal(rest.status, 401);
  });

  test('a resource that is not one of ours is refused (invalid_target)', async () => {
    const clientId = await publicClient();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: 'https://evil.example.test/mcp', scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' }, null);
    assert.equal(landed.searchParams.get('error'), 'invalid_target');
  });
});

describe('consent', () => {
  test('a consent form without its CSRF token, with another one, without its cookie, or from another origin changes nothing', async () => {
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    const { challenge } = pkce();
    let page = await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' })));
    const login = formOf(await (page as Response).text());
    page = await browser.follow(await browser.post(`/oauth/interaction/${login.uid}/login`, { csrf: login.csrf, email: aliceEmail, password }));
    const consent = formOf(await (page as Response).text());
    const before = await oauthRows();
    const forged = [
      () => browser.post(`/oauth/interaction/${consent.uid}/consent`, { permission: 'pm:read' }),
      () => browser.post(`/oauth/interaction/${consent.uid}/consent`, { csrf: login.csrf.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), permission: 'pm:read' }),
      () => browser.post(`/oauth/interaction/${consent.uid}/consent`, { csrf: consent.csrf, permission: 'pm:read' }, { origin: 'https://evil.example.test' }),
      () => fetch(`${base}/oauth/interaction/${consent.uid}/consent`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.jar.header().replace(/mandate_csrf=[^;]+;?\s*/, '') }, body: `csrf=${consent.csrf}&permission=pm:read` }),
    ];
    for (const attempt of forged) {
      const response = await attempt();
      assert.equal(response.status, 403);
      assert.equal(response.headers.get('location'), null);
    }
    assert.equal(await oauthRows(), before, 'no grant was stored');
    // The real form still works afterwards.
    const landed = await browser.follow(await browser.post(`/oauth/interaction/${consent.uid}/consent`, { csrf: consent.csrf, permission: 'pm:read' }));
    assert.ok(landed instanceof URL && landed.searchParams.get('code'));
    recordSecret(landed.searchParams.get('code')!);
  });

  test('deny stores nothing and tells the client access_denied', async () => {
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    let page = await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })));
    const login = formOf(await (page as Response).text());
    page = await browser.follow(await browser.post(`/oauth/interaction/${login.uid}/login`, { csrf: login.csrf, email: aliceEmail, password }));
    const consent = formOf(await (page as Response).text());
    const before = await oauthRows();
    const grantsBefore = await rt.db.orm.em.fork().count(OAuthRecord, { model: 'Grant' });
    const landed = await browser.follow(await browser.post(`/oauth/interaction/${consent.uid}/deny`, { csrf: consent.csrf }));
    assert.ok(landed instanceof URL);
    assert.equal(landed.searchParams.get('error'), 'access_denied');
    assert.equal(landed.searchParams.get('code'), null);
    assert.equal(await oauthRows(), before);
    assert.equal(await rt.db.orm.em.fork().count(OAuthRecord, { model: 'Grant' }), grantsBefore);
  });

  test('narrowed consent: the token carries only the permissions left ticked', async () => {
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password }, ['pm:read']);
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const grants = await rt.runner.run(ops.listMyOauthGrants, callerOf(alice), {});
    assert.ok(grants.ok);
    const grant = (grants.value as { items: { client_id: string; permissions: string[] | null; resource: string }[] }).items.find((g) => g.client_id === clientId)!;
    assert.deepEqual(grant.permissions, ['pm:read']);
    assert.equal(grant.resource, `${base}/mcp/core`);
    assert.equal((await initializeStatus(base, '/mcp/core', String(exchanged.body.access_token))).status, 200);
  });

  test('a consent that offers a permission the user does not hold cannot be made to grant it', async () => {
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/admin`, scope: 'users:write pm:read', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password }, ['users:write', 'pm:read']);
    await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const rows = await rt.db.orm.em.fork().find(ApiToken, { oauthClientId: clientId });
    assert.deepEqual(rows.map((r) => r.scopes), [['pm:read']]);
  });
});

describe('client ID metadata documents', () => {
  test('a document at a private or loopback address is never fetched (SSRF), and the request fails here', async () => {
    let fetched = 0;
    const https = await httpsOnLoopback((_req, res) => {
      fetched++;
      res.end('{}');
    });
    try {
      for (const clientId of [`${https.url}/client.json`, 'https://10.0.0.1/client.json', 'https://169.254.169.254/latest/meta-data.json']) {
        const response = await new Browser(base).get(new Browser(base).authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, code_challenge: pkce().challenge, code_challenge_method: 'S256' }));
        assert.equal(response.status, 400, clientId);
        assert.equal(response.headers.get('location'), null);
      }
      assert.equal(fetched, 0, 'the loopback document was not fetched');
    } finally {
      https.server.close();
    }
  });
});

describe('dynamic registration', () => {
  test('a flood from one address is limited; identical registrations are one client and are not counted', async () => {
    const from = address();
    const metadata = { client_name: 'Claude', redirect_uris: ['https://claude.ai/api/mcp/auth_callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'] };
    const ids = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const same = await register(base, metadata, { 'x-forwarded-for': from });
      assert.equal(same.status, 201);
      ids.add(String(same.body.client_id));
    }
    assert.equal(ids.size, 1, 'thirty identical registrations are one client');
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await register(base, { ...metadata, client_name: `flood ${i}` }, { 'x-forwarded-for': from })).status);
    assert.deepEqual(statuses.filter((s) => s === 201).length, 7, 'eight an hour per address: one was the identical client');
    assert.ok(statuses.slice(7).every((s) => s === 429));
    assert.equal((await register(base, metadata, { 'x-forwarded-for': from })).status, 201, 'the known registration still answers');
  });

  test('a registration never used expires; a used one stays', async () => {
    const unused = await publicClient();
    const used = await publicClient();
    await tokensFor(used);
    await rt.db.orm.em.fork().execute(`update oauth_record set created_at = now() - interval '2 days' where model = 'Client' and client_id in (?, ?)`, [unused, used]);
    assert.ok((await rt.oauth!.sweep()) >= 1);
    const left = await rt.db.orm.em.fork().find(OAuthRecord, { model: 'Client', clientId: { $in: [unused, used] } });
    assert.deepEqual(left.map((r) => r.clientId), [used]);
  });

  test('oversized, deeply nested and NUL-laden registrations are refused as client errors', async () => {
    const big = await register(base, { redirect_uris: Array.from({ length: 5000 }, (_, i) => `https://a.example.test/${i}`), token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': address() });
    assert.ok(big.status === 400 || big.status === 413, `status ${big.status}`);
    const nul = await register(base, { client_name: 'a\u0000b', redirect_uris: ['https://a.example.test/\u0000'], token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': address() });
    assert.equal(nul.status, 400);
    let nested: unknown = 'x';
    for (let i = 0; i < 200; i++) nested = { nested };
    const deep = await register(base, { client_name: 'deep', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none', software_statement_extra: nested }, { 'x-forwarded-for': address() });
    assert.ok(deep.status < 500, `status ${deep.status}`);
  });
});

describe('sign-in page', () => {
  test('password guessing shares the 5-per-minute limiter with Basic logins', async () => {
    const victim = await makeUser(rt, { roles: ['developer'] });
    await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: victim.id, password });
    const clientId = await publicClient();
    const from = address();
    const browser = new Browser(base, from);
    const page = await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })));
    const form = formOf(await (page as Response).text());
    for (let i = 0; i < 3; i++) {
      const wrong = await browser.post(`/oauth/interaction/${form.uid}/login`, { csrf: form.csrf, email: victim.email, password: `wrong ${i}` });
      assert.equal(wrong.status, 401);
      assert.match(await wrong.text(), /Wrong email or password/);
    }
    for (let i = 0; i < 2; i++) {
      const basic = await fetch(`${base}/api/me`, { headers: { 'x-forwarded-for': from, authorization: `Basic ${Buffer.from(`${victim.email}:basic wrong ${i}`).toString('base64')}` } });
      assert.equal(basic.status, 401);
    }
    const blocked = await browser.post(`/oauth/interaction/${form.uid}/login`, { csrf: form.csrf, email: victim.email, password });
    assert.equal(blocked.status, 429, 'even the right password waits once the limit is reached');
    assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
  });

  test('a NUL byte or a huge value in the form is a wrong login, not a failure', async () => {
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    const page = await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })));
    const form = formOf(await (page as Response).text());
    for (const email of [`nul\u0000@example.test`, 'x'.repeat(100_000)]) {
      const response = await browser.post(`/oauth/interaction/${form.uid}/login`, { csrf: form.csrf, email, password: 'p\u0000' }, { 'x-forwarded-for': address() });
      assert.ok([401, 429].includes(response.status), `status ${response.status}`);
    }
  });

  test('the pages cannot be framed, carry a strict CSP, load nothing from elsewhere and send no referrer', async () => {
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    const page = (await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })))) as Response;
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const html = await page.text();
    assert.doesNotMatch(html, /<script|src=|href="http/i);
    assert.match(page.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
  });

  test('a client name cannot inject markup into the pages', async () => {
    const registered = await register(base, { client_name: '<img src=x onerror=alert(1)>"', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': address() });
    const browser = new Browser(base, address());
    const page = (await browser.follow(await browser.get(browser.authorizeUrl({ client_id: String(registered.body.client_id), redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })))) as Response;
    const html = await page.text();
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /&#60;img/);
  });
});

describe('grants end', () => {
  test('revoking a grant (tool), deactivating its user or deleting its client refuses its access token at the next request', async () => {
    const clientA = await publicClient();
    const a = await tokensFor(clientA);
    assert.equal((await initializeStatus(base, '/mcp/core', a.access)).status, 200);
    const list = await rt.runner.run(ops.listMyOauthGrants, callerOf(alice), {});
    const grant = (list.ok ? (list.value as { items: { id: string; client_id: string }[] }).items : []).find((g) => g.client_id === clientA)!;
    const revoked = await rt.runner.run(ops.revokeMyOauthGrant, callerOf(alice), { grant_id: grant.id });
    assert.ok(revoked.ok);
    assert.equal((await initializeStatus(base, '/mcp/core', a.access)).status, 401);
    assert.equal((await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: a.refresh, client_id: clientA })).body.error, 'invalid_grant');

    const other = await makeUser(rt, { roles: ['developer'] });
    const stranger = await rt.runner.run(ops.revokeMyOauthGrant, callerOf(other), { grant_id: grant.id });
    assert.ok(!stranger.ok && stranger.error.code === 'not_found', "another user's grant is not found, not revoked");

    const clientB = await publicClient();
    const b = await tokensFor(clientB);
    const admin = await makeUser(rt, { roles: ['admin'] });
    const deleted = await rt.runner.run(ops.deleteOauthClient, callerOf(admin), { client_id: clientB });
    assert.ok(deleted.ok);
    assert.equal((deleted.value as { grants_revoked: number }).grants_revoked, 1);
    assert.equal((await initializeStatus(base, '/mcp/core', b.access)).status, 401);
  });

  test('deactivating the user refuses the token at once', async () => {
    const bob = await makeUser(rt, { roles: ['developer'] });
    await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: bob.id, password });
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: bob.email, password });
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const access = String(exchanged.body.access_token);
    assert.equal((await initializeStatus(base, '/mcp/core', access)).status, 200);
    await rt.runner.run(ops.deactivateUser, { kind: 'system', name: 'test' }, { user_id: bob.id });
    assert.equal((await initializeStatus(base, '/mcp/core', access)).status, 401);
  });

  test('no code, access token or refresh token is in an audit row or a log line', async () => {
    const clientId = await publicClient();
    const t = await tokensFor(clientId);
    await rt.runner.audit.flush();
    const text = JSON.stringify(await rt.auditRows()) + rt.logs.join('');
    for (const secret of [t.code, t.access, t.refresh, t.verifier, password]) assert.ok(!text.includes(secret), 'a secret is in the audit or the log');
    const operations = new Set((await rt.auditRows()).map((row) => row.operation));
    for (const step of ['oauth_register', 'oauth_authorize', 'oauth_sign_in', 'oauth_consent', 'oauth_token']) assert.ok(operations.has(step), `${step} is audited`);
  });
});

describe('one resource per grant', () => {
  test('an authorization naming several resources is refused on the page, not granted for one of them', async () => {
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    const params = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: CALLBACK, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256', state: 's' });
    params.append('resource', `${base}/mcp/core`);
    params.append('resource', `${base}/mcp/admin`);
    const page = await browser.follow(await browser.get(`/oauth/authorize?${params}`));
    assert.ok(page instanceof Response);
    assert.equal(page.status, 400);
    assert.match(await page.text(), /invalid_target/);
  });
});

describe('a connected application stays inside its grant', () => {
  test('it cannot mint API tokens, agent sessions, delegations or OAuth clients that would outlive the grant', async () => {
    const clientId = await publicClient();
    const { access } = await tokensFor(clientId, `${base}/mcp`);
    const client = new Client({ name: 'attack', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { requestInit: { headers: { authorization: `Bearer ${access}` } } }));
    try {
      const other = await makeUser(rt, { roles: ['developer'] });
      const calls: [string, Record<string, unknown>][] = [
        ['create_my_token', { name: 'escape' }],
        ['start_agent_session', { role: 'developer' }],
        ['create_delegation', { delegate_id: other.id, permission: 'pm:read' }],
      ];
      for (const [name, args] of calls) {
        const result = await client.callTool({ name, arguments: args });
        const error = errorOfToolResult(result);
        assert.ok(result.isError && error, `${name} must be refused`);
        assert.equal(error.code, 'forbidden', `${name}: ${error.message}`);
        assert.match(error.message, /connected with OAuth/);
      }
      assert.equal(await rt.db.orm.em.fork().count(ApiToken, { user: alice.id, oauthGrantId: null, name: 'escape' }), 0);
      const me = await client.callTool({ name: 'whoami', arguments: {} });
      assert.notEqual(me.isError, true, 'ordinary calls work');
    } finally {
      await client.close();
    }
  });

  test('a grant outlives the browser session it was given in (refresh still works)', async () => {
    const clientId = await publicClient();
    const t = await tokensFor(clientId);
    await rt.db.orm.em.fork().execute(`delete from oauth_record where model = 'Session'`);
    const refreshed = await tokenRequest(base, { grant_type: 'refresh_token', refresh_token: t.refresh, client_id: clientId });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  });

  test('after deactivation and reactivation the old grant is not reused: consent is asked again', async () => {
    const carol = await makeUser(rt, { roles: ['developer'] });
    await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: carol.id, password });
    // A web client: the library asks native ones for consent every time anyway.
    const web = 'https://app.example.test/cb';
    const clientId = await publicClient([web]);
    const browser = new Browser(base, address());
    const request = () => ({ client_id: clientId, redirect_uri: web, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    const first = await authorize(browser, request(), { email: carol.email, password });
    assert.ok(first.searchParams.get('code'));
    recordSecret(first.searchParams.get('code')!);
    // While the grant stands, the same browser gets a code at once: no page.
    const reused = await browser.follow(await browser.get(browser.authorizeUrl(request())));
    assert.ok(reused instanceof URL && reused.searchParams.get('code'), 'a live grant is reused');
    recordSecret(reused.searchParams.get('code')!);
    await rt.runner.run(ops.deactivateUser, { kind: 'system', name: 'test' }, { user_id: carol.id });
    await rt.runner.run(ops.reactivateUser, { kind: 'system', name: 'test' }, { user_id: carol.id });
    const again = await browser.follow(await browser.get(browser.authorizeUrl(request())));
    assert.ok(again instanceof Response, 'no code is issued without asking');
    const html = await again.text();
    assert.match(html, /Sign in to Mandate|Allow /);
  });
});

describe('what the library is told', () => {
  test('the metadata names the issuer whatever Host or X-Forwarded-Host says', async () => {
    const response = await fetch(`${base}/.well-known/oauth-authorization-server`, { headers: { 'x-forwarded-host': 'evil.example.test', 'x-forwarded-proto': 'https' } });
    const meta = (await response.json()) as Record<string, string>;
    assert.equal(meta.token_endpoint, `${base}/oauth/token`);
    assert.equal(meta.authorization_endpoint, `${base}/oauth/authorize`);
  });

  test('the audit records the client address the proxy settings give, not a forged X-Forwarded-For', async () => {
    const registered = await register(base, { client_name: 'xff probe', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': '203.0.113.66, 198.51.100.201' });
    assert.equal(registered.status, 201);
    const rows = await rt.auditRows();
    const row = rows.find((r) => r.operation === 'oauth_register' && JSON.stringify(r.detail).includes(String(registered.body.client_id)));
    assert.equal(row?.client_address, '198.51.100.201', 'one trusted hop: the right-most entry');
  });

  test('an identical registration is answered from the stored client, without a write', async () => {
    const metadata = { client_name: 'same twice', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' };
    const first = await register(base, metadata, { 'x-forwarded-for': address() });
    const stamp = await rt.db.orm.em.fork().execute(`select created_at from oauth_record where client_id = ?`, [first.body.client_id], 'get');
    const second = await register(base, metadata, { 'x-forwarded-for': address() });
    assert.deepEqual(second.body, first.body);
    assert.deepEqual(await rt.db.orm.em.fork().execute(`select created_at from oauth_record where client_id = ?`, [first.body.client_id], 'get'), stamp);
  });

  test('registrations from IPv6 are counted per /64', () => {
    assert.equal(limiterKey('2001:db8:1:2:aaaa::1'), limiterKey('2001:db8:1:2:ffff:1:2:3'));
    assert.notEqual(limiterKey('2001:db8:1:2::1'), limiterKey('2001:db8:1:3::1'));
    assert.equal(limiterKey('198.51.100.7'), '198.51.100.7');
  });
});

describe('step-up (insufficient_scope)', () => {
  test('a narrowed grant calling a tool outside it gets 403 insufficient_scope naming the scope to ask for; a permission the user lacks is an ordinary refusal', async () => {
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password }, ['pm:read']);
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const access = String(exchanged.body.access_token);
    const init = await initializeStatus(base, '/mcp', access);
    const session = init.headers.get('mcp-session-id')!;
    const call = (name: string, args: Record<string, unknown>) =>
      fetch(`${base}/mcp`, {
        method: 'POST',
        headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: args } }),
      });
    const outside = await call('install_mcp_server', { catalog_id: 'nothing' });
    assert.equal(outside.status, 403);
    const challengeHeader = outside.headers.get('www-authenticate') ?? '';
    assert.match(challengeHeader, /^Bearer realm="mandate", error="insufficient_scope", scope="pm:read installs:write", resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
    const notHeld = await call('create_user', { email: 'x@example.test' });
    assert.equal(notHeld.status, 200, 'users:write is not the user\'s to grant: the tool refuses as usual');
    assert.match(await notHeld.text(), /users:write/);
    const inside = await call('whoami', {});
    assert.equal(inside.status, 200);
  });
});

describe('revocation (RFC 7009)', () => {
  test('a client cannot revoke a token issued to another client', async () => {
    const owner = await publicClient();
    const stranger = await publicClient();
    const t = await tokensFor(owner);
    const response = await fetch(`${base}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.access, client_id: stranger }) });
    assert.equal(response.status, 200, 'RFC 7009 answers 200 either way');
    assert.equal((await initializeStatus(base, '/mcp/core', t.access)).status, 200, 'the token still works');
    const own = await fetch(`${base}/oauth/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t.access, client_id: owner }) });
    assert.equal(own.status, 200);
    assert.equal((await initializeStatus(base, '/mcp/core', t.access)).status, 401);
  });
});

describe('live-probe findings', () => {
  test('a password reset, ending the user\'s sessions, or a deactivation ends their browser sign-in too', async () => {
    for (const end of ['reset', 'sessions', 'deactivate'] as const) {
      const dave = await makeUser(rt, { roles: ['developer'] });
      await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: dave.id, password });
      const clientId = await publicClient();
      const browser = new Browser(base, address());
      const request = () => ({ client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
      recordSecret((await authorize(browser, request(), { email: dave.email, password })).searchParams.get('code')!);
      if (end === 'reset') assert.ok((await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: dave.id, password: 'another password 2' })).ok);
      if (end === 'sessions') assert.ok((await rt.runner.run(ops.revokeUserSessions, { kind: 'system', name: 'test' }, { user_id: dave.id })).ok);
      if (end === 'deactivate') {
        assert.ok((await rt.runner.run(ops.deactivateUser, { kind: 'system', name: 'test' }, { user_id: dave.id })).ok);
        assert.ok((await rt.runner.run(ops.reactivateUser, { kind: 'system', name: 'test' }, { user_id: dave.id })).ok);
      }
      const page = await browser.follow(await browser.get(browser.authorizeUrl(request())));
      assert.ok(page instanceof Response, end);
      assert.equal(page.status, 200, end);
      assert.match(await page.text(), /Sign in to Mandate/, `${end}: the browser must sign in again`);
    }
  });

  test('a deactivated user\'s browser session is no session: the sign-in page, not a failure', async () => {
    const erin = await makeUser(rt, { roles: ['developer'] });
    await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: erin.id, password });
    const clientId = await publicClient();
    const browser = new Browser(base, address());
    const request = () => ({ client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' });
    recordSecret((await authorize(browser, request(), { email: erin.email, password })).searchParams.get('code')!);
    // Deactivated behind the sessions' back (no session ending): the adapter still refuses it.
    await rt.db.orm.em.fork().execute('update app_user set active = false where id = ?', [erin.id]);
    const page = await browser.follow(await browser.get(browser.authorizeUrl(request())));
    assert.ok(page instanceof Response);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Sign in to Mandate/);
  });

  test('a connected admin app cannot set passwords (its own or a new user\'s), but may create a user without one', async () => {
    const boss = await makeUser(rt, { roles: ['admin'] });
    await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: boss.id, password });
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/admin`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: boss.email, password });
    const exchanged = await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const client = new Client({ name: 'attack', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/admin`), { requestInit: { headers: { authorization: `Bearer ${String(exchanged.body.access_token)}` } } }));
    try {
      for (const [name, args] of [
        ['reset_password', { user_id: boss.id, password: 'app chosen password 1' }],
        ['create_user', { email: `mallory-${counter}@example.test`, password: 'app chosen password 1', roles: ['admin'] }],
        ['create_token_for_user', { user_id: boss.id, name: 'escape' }],
      ] as const) {
        const result = await client.callTool({ name, arguments: args });
        assert.ok(result.isError, `${name} must be refused`);
        assert.match(errorOfToolResult(result).message, /connected with OAuth/, name);
      }
      const plain = await client.callTool({ name: 'create_user', arguments: { email: `no-password-${counter}@example.test` } });
      assert.notEqual(plain.isError, true, 'a user without a password is fine');
    } finally {
      await client.close();
    }
  });

  test('plain http redirect URIs elsewhere than loopback are refused at registration, in any spelling', async () => {
    for (const uri of ['http://evil.example.test/cb', 'HTTP://EVIL.EXAMPLE.TEST/cb', 'http://localhost.evil.test/cb', 'http://127.0.0.1.evil.test/cb']) {
      const refused = await register(base, { redirect_uris: [uri], token_endpoint_auth_method: 'none' }, { 'x-forwarded-for': address() });
      assert.equal(refused.status, 400, uri);
      assert.equal(refused.body.error, 'invalid_redirect_uri', uri);
    }
  });

  test('a NUL or an oversized client_id is an error answer, not a failure', async () => {
    for (const clientId of ['a\u0000', 'https://a.example.test/\u0000', 'x'.repeat(5000)]) {
      const authorizeResponse = await new Browser(base, address()).get(`/oauth/authorize?${new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: CALLBACK, code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`);
      assert.ok(authorizeResponse.status >= 400 && authorizeResponse.status < 500, `authorize: ${authorizeResponse.status}`);
      for (const path of ['/oauth/token', '/oauth/revoke']) {
        const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ client_id: clientId, grant_type: 'authorization_code', code: 'x', token: 'x' }) });
        assert.ok(response.status >= 400 && response.status < 500, `${path}: ${response.status}`);
      }
    }
  });

  test('a permission sent twice cannot widen a narrowed consent to everything', async () => {
    const clientId = await publicClient();
    const { verifier, challenge } = pkce();
    const landed = await authorize(new Browser(base, address()), { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: challenge, code_challenge_method: 'S256' }, { email: aliceEmail, password }, ['pm:read', 'pm:read', 'pm:read']);
    await tokenRequest(base, { grant_type: 'authorization_code', code: recordSecret(landed.searchParams.get('code')!), redirect_uri: CALLBACK, code_verifier: verifier, client_id: clientId });
    const rows = await rt.db.orm.em.fork().find(ApiToken, { oauthClientId: clientId });
    assert.deepEqual(rows.map((r) => r.scopes), [['pm:read']]);
  });

  test('a request that names no scope Mandate knows is refused (invalid_scope) before anything is stored', async () => {
    const clientId = await publicClient();
    const before = await oauthRows();
    for (const scope of [undefined, 'openid', 'offline_access', 'PM:READ']) {
      const browser = new Browser(base, address());
      const request: Record<string, string> = { client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, code_challenge: pkce().challenge, code_challenge_method: 'S256' };
      if (scope) request.scope = scope;
      let page = await browser.follow(await browser.get(browser.authorizeUrl(request as never)));
      // Signed in first where the sign-in page comes before the check.
      if (page instanceof Response && page.status === 200) {
        const form = formOf(await page.text());
        page = await browser.follow(await browser.post(`/oauth/interaction/${form.uid}/login`, { csrf: form.csrf, email: aliceEmail, password }));
      }
      const text = page instanceof Response ? await page.text() : page.searchParams.get('error') ?? '';
      assert.match(text, /invalid_scope/, String(scope));
    }
    assert.equal(await oauthRows(), before);
  });

  test('the library\'s own answers cannot be framed either', async () => {
    const response = await new Browser(base, address()).get(`/oauth/authorize?${new URLSearchParams({ client_id: 'nobody', response_type: 'code' })}`);
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    const token = await fetch(`${base}/oauth/token`, { method: 'POST', body: 'x' });
    assert.equal(token.headers.get('x-frame-options'), 'DENY');
  });
});

test('a redirect carrying a code has no body repeating it', async () => {
  const clientId = await publicClient();
  const browser = new Browser(base, address());
  let page = await browser.follow(await browser.get(browser.authorizeUrl({ client_id: clientId, redirect_uri: CALLBACK, resource: `${base}/mcp/core`, scope: 'mandate', code_challenge: pkce().challenge, code_challenge_method: 'S256' })));
  const login = formOf(await (page as Response).text());
  page = await browser.follow(await browser.post(`/oauth/interaction/${login.uid}/login`, { csrf: login.csrf, email: aliceEmail, password }));
  const consent = formOf(await (page as Response).text());
  let response = await browser.post(`/oauth/interaction/${consent.uid}/consent`, { csrf: consent.csrf, permission: 'pm:read' });
  for (let hops = 0; hops < 5 && !(response.headers.get('location') ?? '').startsWith(CALLBACK); hops++) {
    response = await browser.get(new URL(response.headers.get('location')!, base).pathname + new URL(response.headers.get('location')!, base).search);
  }
  const location = response.headers.get('location') ?? '';
  assert.ok(location.startsWith(CALLBACK) && new URL(location).searchParams.get('code'), location);
  recordSecret(new URL(location).searchParams.get('code')!);
  assert.equal(await response.text(), '');
});
