import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { openRuntime, type Runtime } from '../lib/runtime.ts';
import { createLogger } from '../lib/log.ts';
import { hashPassword } from '../lib/identity/passwords.ts';
import { PmConnection, PmOauthState, User } from '../lib/db/entities/index.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, TEST_DB, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { CLIENT_ID, CLIENT_SECRET, FakeAtlassianAuth } from './helpers/fake-atlassian-auth.ts';
import { specsMissing } from './helpers/openapi.ts';

// Jira Cloud OAuth 2.0 (3LO) end to end: connect (302 to the consent screen with PKCE S256 and an
// opaque state), the callback (state bound to the user who started it, single use, 10 minutes),
// the grant stored for that user only, tools through Atlassian's gateway, refresh before expiry with
// rotating refresh tokens, concurrent refreshes coalesced (also across two instances on
// PostgreSQL), a refused refresh marking the connection expired. Atlassian is a fake on loopback.

const PUBLIC = 'http://mandate.test';
const aliceJira: FakeUser = { accountId: '5b10a2844c20165700ede21g', name: 'alice', displayName: 'Alice Doe', emailAddress: 'alice@corp.test', secret: recordSecret('oauth-alice-unused-api-token'), projects: ['ALPHA'] };
const bobJira: FakeUser = { accountId: '5b10ac8d82e05b22cc7d4ef5', name: 'bob', displayName: 'Bob Roe', emailAddress: 'bob@corp.test', secret: recordSecret('oauth-bob-unused-api-token'), projects: ['BETA'] };

let jira: FakeJira;
let auth: FakeAtlassianAuth;
let rt: TestRuntime;
let server: Server;
let base: string;
let clock = Date.now();
const responses: string[] = [];
const { call, ok, refused } = toolCaller(() => rt, responses);

const OAUTH_ENV = {
  MANDATE_PM_ALLOW_NETWORKS: 'loopback',
  MANDATE_PM_ALLOW_HTTP: 'true',
  MANDATE_PUBLIC_URL: PUBLIC,
  MANDATE_JIRA_OAUTH_CLIENT_ID: CLIENT_ID,
  MANDATE_JIRA_OAUTH_CLIENT_SECRET: CLIENT_SECRET,
};

before(async () => {
  jira = await new FakeJira('cloud', [aliceJira, bobJira]).start();
  auth = await new FakeAtlassianAuth(jira).start();
  rt = await testRuntime({ now: () => new Date(clock), env: { ...OAUTH_ENV, MANDATE_JIRA_OAUTH_AUTH_URL: auth.url, MANDATE_JIRA_OAUTH_API_URL: jira.url } });
  server = createHttpServer(rt);
  base = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  jira.addIssue('ALPHA', { summary: 'alpha over oauth' });
  jira.addIssue('BETA', { summary: 'beta over oauth' });
});

afterEach(() => {
  if (specsMissing()) return;
  const found = jira.takeMismatches();
  assert.deepEqual(found, [], `requests that do not conform to Atlassian's OpenAPI document:\n${found.join('\n')}`);
});

after(async () => {
  const text = responses.join('\n');
  keepArtifact('responses', text);
  assert.ok(!text.includes(CLIENT_SECRET), 'the OAuth client secret appears in a response');
  server.closeAllConnections();
  server.close();
  await rt.close();
  await auth.stop();
  await jira.stop();
});

/** A browser (or any HTTP client) at Mandate: public URLs are mapped to this test's server; no redirects followed. */
async function browse(url: string, headers: Record<string, string>) {
  const target = url.startsWith(PUBLIC) ? `${base}${url.slice(PUBLIC.length)}` : url.startsWith('/') ? `${base}${url}` : url;
  const response = await fetch(target, { headers, redirect: 'manual' });
  const text = await response.text();
  // An authorize URL hands the user their state by design (like a new token, shown once); every
  // other answer goes to the secret sweep.
  const location = response.headers.get('location') ?? '';
  const handsOutState = location.startsWith(auth.url) || text.includes(`${auth.url}/authorize`);
  responses.push(handsOutState ? `${response.status} (an authorize URL)` : `${response.status} ${location} ${text}`);
  return { status: response.status, location: response.headers.get('location'), headers: response.headers, text, json: () => JSON.parse(text) };
}

async function person(roles = ['developer']) {
  const user = await makeUser(rt, { roles });
  const token = recordSecret((await makeToken(rt, user)).raw);
  return { user, headers: { authorization: `Bearer ${token}` } };
}

/** Starts a connect as this person: the authorize URL Mandate redirected to (its state recorded as a secret). */
async function startConnect(who: { headers: Record<string, string> }, query = '') {
  const answer = await browse(`/api/v1/user/credentials/jira_cloud/connect${query}`, who.headers);
  assert.equal(answer.status, 302, answer.text);
  recordSecret(new URL(answer.location!).searchParams.get('state')!);
  return answer.location!;
}

const connectionsOf = (userId: string) => rt.db.orm.em.fork().find(PmConnection, { user: userId });

async function connected(who: { user: User; headers: Record<string, string> }, jiraUser: FakeUser = aliceJira) {
  const back = await browse(auth.consent(await startConnect(who), jiraUser), who.headers);
  assert.equal(back.status, 302, back.text);
  assert.equal(back.location, '/pm/oauth/result?outcome=connected');
  const [connection] = await connectionsOf(who.user.id);
  return connection!;
}

test('connect answers 302 to Atlassian with PKCE S256 and an opaque state; the callback stores the grant for that user; tools go through the gateway', async () => {
  const alice = await person();
  const location = await startConnect(alice, '?name=acme%20oauth');
  const params = new URL(location).searchParams;
  assert.equal(`${new URL(location).origin}${new URL(location).pathname}`, `${auth.url}/authorize`);
  assert.equal(params.get('code_challenge_method'), 'S256');
  assert.equal(params.get('redirect_uri'), `${PUBLIC}/api/v1/user/credentials/jira_cloud/callback`);
  assert.equal(params.get('audience'), 'api.atlassian.com');
  const state = params.get('state')!;
  assert.match(state, /^[\w-]{43}$/, 'a 256-bit random value, base64url');
  assert.ok(!state.includes(alice.user.id) && !Buffer.from(state, 'base64url').toString('latin1').includes(alice.user.id), 'the state says nothing about the user');
  const stored = await rt.db.orm.em.fork().find(PmOauthState, { user: alice.user.id });
  assert.equal(stored.length, 1);
  assert.ok(!JSON.stringify(stored).includes(state), 'only a hash of the state is stored');
  assert.equal(stored[0]!.verifier.split(':').length, 4, 'the PKCE verifier is stored sealed by the vault');

  const callback = auth.consent(location, aliceJira);
  const back = await browse(callback, alice.headers);
  assert.equal(back.status, 302, back.text);
  assert.equal(back.location, '/pm/oauth/result?outcome=connected');
  assert.equal(back.headers.get('referrer-policy'), 'no-referrer', 'the callback URL (code, state) is not passed on as a referrer');
  assert.deepEqual(auth.grants.at(-1), { type: 'authorization_code', refused: null }, 'the code was exchanged with the verifier matching the challenge');
  const page = await browse(back.location!, {});
  assert.equal(page.status, 200);
  assert.match(page.text, /Connected/);

  const listed = await ok(alice.user, 'list_pm_connections');
  assert.equal(listed.items.length, 1);
  const connection = listed.items[0];
  assert.equal(connection.name, 'acme oauth');
  assert.equal(connection.provider, 'jira_cloud');
  assert.equal(connection.auth, 'oauth');
  assert.equal(connection.site, 'https://acme.atlassian.net');
  assert.equal(connection.status, 'connected');
  assert.deepEqual(connection.account, { id: aliceJira.accountId, name: aliceJira.displayName });
  assert.ok(connection.scopes.includes('write:jira-work'));
  assert.equal(connection.expires_at, new Date(clock + 3600_000).toISOString());
  assert.equal(connection.default, true);
  assert.equal((await rt.db.orm.em.fork().count(PmOauthState, { user: alice.user.id })), 0, 'the state is gone once used');

  const issue = await ok(alice.user, 'get_issue', { key: 'ALPHA-1' });
  assert.equal(issue.summary, 'alpha over oauth');
  assert.equal(issue.url, 'https://acme.atlassian.net/browse/ALPHA-1', 'links point at the site, not the gateway');
  const last = jira.requests.at(-1)!;
  assert.equal(last.path, '/rest/api/3/issue/ALPHA-1');
  assert.equal(last.user, 'alice');
  assert.match(last.authorization, /^Bearer access-/);
  const beta = await call(alice.user, 'get_issue', { key: 'BETA-1' });
  assert.equal(beta.ok, false, 'her OAuth grant reaches only what her Atlassian account may see');
});

test('a browser without Mandate credentials is asked for them (401 Basic) and the state survives; with Basic the callback completes', async () => {
  const carol = await makeUser(rt, { roles: ['developer'], email: `carol-${Date.now()}@example.test` });
  const password = recordSecret('carol-browser-password-1234');
  const em = rt.db.orm.em.fork();
  await em.nativeUpdate(User, { id: carol.id }, { passwordHash: await hashPassword(password) });
  const basic = { authorization: `Basic ${Buffer.from(`${carol.email}:${password}`).toString('base64')}` };

  const prompt = await browse('/api/v1/user/credentials/jira_cloud/connect', {});
  assert.equal(prompt.status, 401);
  assert.match(prompt.headers.get('www-authenticate') ?? '', /Basic realm="mandate"/);

  const callback = auth.consent(await startConnect({ headers: basic }), aliceJira);
  const anonymous = await browse(callback, {});
  assert.equal(anonymous.status, 401, 'the callback needs the Mandate user too');
  const done = await browse(callback, basic);
  assert.equal(done.status, 302, done.text);
  assert.equal((await connectionsOf(carol.id)).length, 1);
});

test('the state is single use: a replayed callback is refused and exchanges nothing', async () => {
  const dave = await person();
  const callback = auth.consent(await startConnect(dave), aliceJira);
  assert.equal((await browse(callback, dave.headers)).status, 302);
  const exchanges = auth.grants.length;
  const replay = await browse(callback, dave.headers);
  assert.equal(replay.status, 400);
  assert.equal(replay.json().error.field, 'state');
  assert.match(replay.json().error.message, /unknown, already used or expired/);
  assert.equal(auth.grants.length, exchanges, 'no second code exchange');
  assert.equal((await connectionsOf(dave.user.id)).length, 1);
});

test('PKCE: when the challenge Atlassian saw is not the one Mandate made, the exchange fails and nothing is stored', async () => {
  const erin = await person();
  const location = new URL(await startConnect(erin));
  location.searchParams.set('code_challenge', 'A'.repeat(43));
  const back = await browse(auth.consent(location.toString(), aliceJira), erin.headers);
  assert.equal(back.status, 400, back.text);
  assert.equal(back.json().error.field, 'code');
  assert.deepEqual(auth.grants.at(-1), { type: 'authorization_code', refused: 'PKCE verifier does not match the challenge' });
  assert.equal((await connectionsOf(erin.user.id)).length, 0);
});

test('a denied consent stores nothing and ends the state', async () => {
  const frank = await person();
  const callback = auth.deny(await startConnect(frank));
  const back = await browse(callback, frank.headers);
  assert.equal(back.status, 302);
  assert.equal(back.location, '/pm/oauth/result?outcome=denied');
  assert.match((await browse(back.location!, {})).text, /nothing was stored/);
  assert.equal((await connectionsOf(frank.user.id)).length, 0);
  assert.equal(await rt.db.orm.em.fork().count(PmOauthState, { user: frank.user.id }), 0);
  assert.equal((await browse(callback, frank.headers)).status, 400);

  const failed = new URL(auth.deny(await startConnect(frank)));
  failed.searchParams.set('error', 'invalid_scope');
  const back2 = await browse(failed.toString(), frank.headers);
  assert.equal(back2.location, '/pm/oauth/result?outcome=failed');
  assert.match((await browse(back2.location!, {})).text, /Atlassian could not complete the authorization/);
  assert.equal((await connectionsOf(frank.user.id)).length, 0);
});

test("the callback with B's state while logged in as A stores nothing for A or B, and B's state is spent", async () => {
  const a = await person();
  const b = await person();
  const bCallback = auth.consent(await startConnect(b), bobJira);
  const exchanges = auth.grants.length;
  const hijack = await browse(bCallback, a.headers);
  assert.equal(hijack.status, 403, hijack.text);
  assert.equal(hijack.json().error.field, 'state');
  assert.match(hijack.json().error.message, /started by another Mandate user; nothing was stored/);
  assert.equal(auth.grants.length, exchanges, 'the code was not even exchanged');
  assert.equal((await connectionsOf(a.user.id)).length, 0);
  assert.equal((await connectionsOf(b.user.id)).length, 0);
  assert.equal((await browse(bCallback, b.headers)).status, 400, 'a state that was presented once is gone');
  const audit = (await rt.auditRows()).filter((row) => row.operation === 'complete_pm_oauth' && row.actor_id === a.user.id);
  assert.equal(audit.at(-1)?.outcome, 'denied');
});

test('a site the grant does not cover is refused and nothing is stored; unfinished connects are capped per user', async () => {
  const pat = await person();
  assert.equal((await browse(auth.consent(await startConnect(pat, '?name=work'), aliceJira), pat.headers)).status, 302);
  const taken = await browse('/api/v1/user/credentials/jira_cloud/connect?name=work', pat.headers);
  assert.equal(taken.status, 409, 'a taken name is refused before the trip to Atlassian');
  assert.equal(taken.json().error.field, 'name');
  await rt.db.orm.em.fork().nativeDelete(PmConnection, { user: pat.user.id });
  const back = await browse(auth.consent(await startConnect(pat, '?site=other.atlassian.net'), aliceJira), pat.headers);
  assert.equal(back.status, 400, back.text);
  assert.equal(back.json().error.field, 'site');
  assert.match(back.json().error.message, /covers acme\.atlassian\.net, not other\.atlassian\.net; nothing was stored/);
  assert.equal((await connectionsOf(pat.user.id)).length, 0);
  const chosen = await browse(auth.consent(await startConnect(pat, '?site=acme.atlassian.net'), aliceJira), pat.headers);
  assert.equal(chosen.status, 302, chosen.text);

  for (let i = 0; i < 20; i++) await startConnect(pat);
  const capped = await browse('/api/v1/user/credentials/jira_cloud/connect', pat.headers);
  assert.equal(capped.status, 429);
  assert.equal(capped.headers.get('retry-after'), '600');
  clock += 10 * 60_000 + 1000;
  assert.equal((await browse('/api/v1/user/credentials/jira_cloud/connect', pat.headers)).status, 302, 'expired ones no longer count');
});

test('a state older than 10 minutes is refused', async () => {
  const gina = await person();
  const callback = auth.consent(await startConnect(gina), aliceJira);
  clock += 10 * 60_000 + 1000;
  const late = await browse(callback, gina.headers);
  assert.equal(late.status, 400);
  assert.equal(late.json().error.field, 'state');
  assert.equal((await connectionsOf(gina.user.id)).length, 0);
});

test('the access token is refreshed before it expires, and the rotated refresh token is the one used next', async () => {
  const hank = await person();
  const connection = await connected(hank);
  const first = jira.requests.filter((r) => r.path === '/rest/api/3/myself').at(-1)!.authorization;

  clock = connection.expiresAt!.getTime() - 30_000; // inside the one-minute margin
  const refreshes = auth.refreshGrants.length;
  await ok(hank.user, 'get_issue', { key: 'ALPHA-1' });
  assert.equal(auth.refreshGrants.length, refreshes + 1);
  assert.equal(auth.refreshGrants.at(-1)!.refused, null);
  const second = jira.requests.at(-1)!.authorization;
  assert.notEqual(second, first, 'the call went out with the new access token');
  const [row] = await connectionsOf(hank.user.id);
  assert.equal(row!.expiresAt!.getTime(), clock + 3600_000);

  await ok(hank.user, 'get_issue', { key: 'ALPHA-1' });
  assert.equal(auth.refreshGrants.length, refreshes + 1, 'a fresh token is not refreshed again');

  // The fake refuses a refresh token used twice: this succeeds only with the rotated one.
  clock = row!.expiresAt!.getTime() + 1000;
  await ok(hank.user, 'get_issue', { key: 'ALPHA-1' });
  assert.equal(auth.refreshGrants.length, refreshes + 2);
  assert.equal(auth.refreshGrants.at(-1)!.refused, null);
});

test('concurrent calls on an expired token share one refresh', async () => {
  const ivan = await person();
  const connection = await connected(ivan);
  clock = connection.expiresAt!.getTime() + 1000;
  auth.refreshDelayMs = 150;
  const refreshes = auth.refreshGrants.length;
  try {
    const results = await Promise.all(Array.from({ length: 6 }, () => call(ivan.user, 'get_issue', { key: 'ALPHA-1' })));
    assert.deepEqual(results.map((r) => r.ok), [true, true, true, true, true, true], JSON.stringify(results.find((r) => !r.ok)));
  } finally {
    auth.refreshDelayMs = 0;
  }
  assert.equal(auth.refreshGrants.length, refreshes + 1);
});

test('two instances on one PostgreSQL refresh a connection once between them', { skip: TEST_DB !== 'postgres' && 'two processes share a database only on PostgreSQL (PGlite serves one process); this runs in the PostgreSQL pass' }, async () => {
  const second: Runtime = await openRuntime(rt.config, { command: 'test', log: createLogger({ level: 'silent' }), now: () => new Date(clock) });
  try {
    const judy = await person();
    const connection = await connected(judy);
    clock = connection.expiresAt!.getTime() + 1000;
    auth.refreshDelayMs = 200;
    const refreshes = auth.refreshGrants.length;
    const onSecond = toolCaller(() => second, responses);
    try {
      const results = await Promise.all([
        ...Array.from({ length: 3 }, () => call(judy.user, 'get_issue', { key: 'ALPHA-1' })),
        ...Array.from({ length: 3 }, () => onSecond.call(judy.user, 'get_issue', { key: 'ALPHA-1' })),
      ]);
      assert.deepEqual(results.map((r) => r.ok), [true, true, true, true, true, true], JSON.stringify(results.find((r) => !r.ok)));
    } finally {
      auth.refreshDelayMs = 0;
    }
    assert.deepEqual(auth.refreshGrants.slice(refreshes), [{ type: 'refresh_token', refused: null }], 'one refresh, and no refused reuse of the rotated token');
  } finally {
    await second.close();
  }
});

test('a refused refresh marks the connection expired; later calls say how to reconnect without any request; reconnecting restores it', async () => {
  const kate = await person();
  const connection = await connected(kate);
  auth.revokeAll();
  clock = connection.expiresAt!.getTime() + 1000;
  const error = await refused(kate.user, 'get_issue', { key: 'ALPHA-1' });
  assert.equal(error.code, 'connection_invalid');
  assert.match(error.message, /has expired .*Connect again: open http:\/\/mandate\.test\/api\/v1\/user\/credentials\/jira_cloud\/connect/);
  const listed = await ok(kate.user, 'list_pm_connections');
  assert.equal(listed.items[0].status, 'expired');
  assert.equal(listed.providers.find((p: any) => p.provider === 'jira_cloud').status, 'expired');

  const grants = auth.grants.length;
  const jiraCalls = jira.requests.length;
  assert.equal((await refused(kate.user, 'get_issue', { key: 'ALPHA-1' })).code, 'connection_invalid');
  assert.equal(auth.grants.length, grants, 'no refresh attempted again');
  assert.equal(jira.requests.length, jiraCalls, 'no Jira request');

  const again = await connected(kate);
  assert.equal(again.id, connection.id, 'a reconnect of the same site updates that connection');
  assert.equal((await connectionsOf(kate.user.id)).length, 1);
  assert.equal(again.status, 'connected');
  assert.equal((await ok(kate.user, 'get_issue', { key: 'ALPHA-1' })).key, 'ALPHA-1');
});

test('a user with no connection is told how to connect, with the connect URL; nothing goes upstream', async () => {
  const leo = await person();
  const before = jira.requests.length + auth.grants.length;
  const error = await refused(leo.user, 'search_issues', { query: 'project = "ALPHA"' });
  assert.equal(error.code, 'connection_required');
  assert.match(error.message, /open http:\/\/mandate\.test\/api\/v1\/user\/credentials\/jira_cloud\/connect/);
  assert.equal(jira.requests.length + auth.grants.length, before);
  const listed = await ok(leo.user, 'list_pm_connections');
  assert.deepEqual(listed.providers.map((p: any) => [p.provider, p.connect_url ?? null]), [
    ['jira_cloud', `${PUBLIC}/api/v1/user/credentials/jira_cloud/connect`], ['jira_dc', null], ['redmine', null], ['openproject', null],
  ]);
});

test('connect as a tool, and for programs asking for JSON: the authorize URL instead of a redirect', async () => {
  const mia = await person();
  // Its result hands out a state by design, so it is kept out of the swept responses.
  const viaTool = await toolCaller(() => rt, []).ok(mia.user, 'connect_pm_oauth', { provider: 'jira_cloud' });
  assert.match(viaTool.authorize_url, new RegExp(`^${auth.url}/authorize\\?`));
  assert.equal(viaTool.expires_at, new Date(clock + 10 * 60_000).toISOString());
  recordSecret(new URL(viaTool.authorize_url).searchParams.get('state')!);
  const asJson = await browse('/api/v1/user/credentials/jira_cloud/connect', { ...mia.headers, accept: 'application/json' });
  assert.equal(asJson.status, 200);
  recordSecret(new URL(asJson.json().authorize_url).searchParams.get('state')!);
  // Either state completes the flow for her.
  assert.equal((await browse(auth.consent(viaTool.authorize_url, aliceJira), mia.headers)).status, 302);
});

test('connect refuses providers without OAuth, and deployments without an OAuth app say so', async () => {
  const ned = await person();
  const dc = await browse('/api/v1/user/credentials/jira_dc/connect', ned.headers);
  assert.equal(dc.status, 400);
  assert.equal(dc.json().error.field, 'provider');
  assert.match(dc.json().error.message, /jira_cloud only; add a jira_dc connection with add_pm_connection/);
  const unknown = await browse('/api/v1/user/credentials/github/connect', ned.headers);
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json().error.field, 'provider');

  const plain = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
  try {
    const user = await makeUser(plain, { roles: ['developer'] });
    const result = await toolCaller(() => plain, responses).refused(user, 'connect_pm_oauth', { provider: 'jira_cloud' });
    assert.equal(result.code, 'unavailable');
    assert.match(result.message, /no Jira Cloud OAuth app configured .*API token/);
    const none = await toolCaller(() => plain, responses).refused(user, 'search_issues', {});
    assert.doesNotMatch(none.message, /connect\b.*http/, 'no connect URL where OAuth is not offered');
  } finally {
    await plain.close();
  }
});

test('OAuth secrets stay out of answers, logs and audit rows (code, state, tokens, client secret)', async () => {
  const olga = await person();
  await connected(olga);
  const rows = JSON.stringify(await rt.auditRows());
  const callbackRows = (await rt.auditRows()).filter((row) => row.operation === 'complete_pm_oauth');
  assert.ok(callbackRows.length > 0);
  for (const row of callbackRows) {
    const input = (row.detail as { input: Record<string, unknown> }).input;
    if ('code' in input) assert.equal(input.code, '[redacted]');
    assert.equal(input.state, '[redacted]');
  }
  for (const value of [CLIENT_SECRET, ...jira.gateway.accessTokens.keys()]) {
    assert.ok(!rows.includes(value), 'an OAuth secret is in an audit row');
    assert.ok(!rt.logs.join('').includes(value), 'an OAuth secret is in the log');
    assert.ok(!responses.join('\n').includes(value), 'an OAuth secret is in a response');
  }
});
