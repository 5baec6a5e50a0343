import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkBaseUrl, forbiddenAddress, type NetworkPolicy } from '../lib/pm/net-guard.ts';
import { retryAfterMs, UpstreamFailure, UpstreamHttp } from '../lib/pm/http.ts';
import { BlockedAddressError } from '../lib/pm/net-guard.ts';
import { OpError } from '../lib/errors.ts';

// The upstream client and the SSRF guard on their own: what a tracker URL may be, where a socket
// may connect, which redirects are followed.

const strict: NetworkPolicy = { allow: new Set(), allowHttp: false };
const loopbackOk: NetworkPolicy = { allow: new Set(['loopback']), allowHttp: true };
const settings = (policy: NetworkPolicy) => ({ policy, timeoutMs: 1000, deadlineMs: 3000, maxRetries: 2 });

let server: Server;
let other: Server;
let base: string;
let otherBase: string;

before(async () => {
  other = createServer((_req, res) => res.end('{"other":true}'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherBase = `http://localhost:${(other.address() as AddressInfo).port}`;
  server = createServer((req, res) => {
    if (req.url === '/hop') return void res.writeHead(302, { location: '/final' }).end();
    if (req.url === '/away') return void res.writeHead(302, { location: `${otherBase}/stolen` }).end();
    if (req.url === '/final') return void res.end('{"final":true}');
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  other.close();
});

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof OpError);
    assert.equal(error.field, 'base_url');
    return error.message;
  }
  assert.fail('expected a refusal');
};

test('tracker URLs: https only, no private, link-local, loopback or reserved addresses unless allowed', () => {
  assert.equal(checkBaseUrl('https://acme.atlassian.net/', strict), 'https://acme.atlassian.net');
  assert.equal(checkBaseUrl('https://jira.corp.example/jira/', strict), 'https://jira.corp.example/jira');
  assert.match(refusal(() => checkBaseUrl('http://acme.atlassian.net', strict)), /https/);
  for (const url of ['https://10.1.2.3', 'https://192.168.0.10', 'https://172.20.0.1', 'https://[fd00::1]', 'https://100.64.0.1']) {
    assert.match(refusal(() => checkBaseUrl(url, strict)), /private address/, url);
  }
  for (const url of ['https://169.254.169.254', 'https://[fe80::1]']) assert.match(refusal(() => checkBaseUrl(url, strict)), /link-local/, url);
  for (const url of ['https://127.0.0.1', 'https://[::1]', 'https://localhost', 'https://api.localhost', 'https://[::ffff:127.0.0.1]']) {
    assert.match(refusal(() => checkBaseUrl(url, strict)), /loopback/, url);
  }
  assert.match(refusal(() => checkBaseUrl('https://0.0.0.0', strict)), /not a routable address/);
  assert.match(refusal(() => checkBaseUrl('https://user:pw@acme.atlassian.net', strict)), /user name or password/);
  assert.match(refusal(() => checkBaseUrl('https://acme.atlassian.net/?x=1', strict)), /query/);
  assert.match(refusal(() => checkBaseUrl('acme.atlassian.net', strict)), /absolute URL/);
  assert.equal(checkBaseUrl('http://127.0.0.1:8080', loopbackOk), 'http://127.0.0.1:8080');
  assert.equal(forbiddenAddress('10.0.0.1', { allow: new Set(['private']), allowHttp: false }), null);
  assert.equal(forbiddenAddress('8.8.8.8', strict), null);
});

test('a name that resolves to a forbidden address is refused when the socket connects', async () => {
  // localhost passes no literal check when loopback names are allowed for the URL, but the
  // socket's lookup still judges the address it resolves to.
  const http = new UpstreamHttp(settings({ allow: new Set(), allowHttp: true }));
  try {
    await assert.rejects(http.send({ method: 'GET', url: `${otherBase}/x` }), (error: unknown) => error instanceof BlockedAddressError && /loopback/.test((error as Error).message));
    await assert.rejects(http.send({ method: 'GET', url: `${base}/x` }), BlockedAddressError, 'an IP literal is judged at request time too');
  } finally {
    http.close();
  }
});

test('redirects are followed within the origin and refused to another host', async () => {
  const http = new UpstreamHttp(settings(loopbackOk));
  try {
    assert.deepEqual((await http.send({ method: 'GET', url: `${base}/hop` })).body, { final: true });
    await assert.rejects(http.send({ method: 'GET', url: `${base}/away` }), (error: unknown) => error instanceof UpstreamFailure && error.kind === 'redirect' && /another host/.test((error as Error).message));
  } finally {
    http.close();
  }
});

test('Retry-After: seconds or an HTTP date; absent or unreadable is null', () => {
  assert.equal(retryAfterMs('0'), 0);
  assert.equal(retryAfterMs('2'), 2000);
  const now = Date.parse('2026-11-23T10:00:00Z');
  assert.equal(retryAfterMs('Mon, 23 Nov 2026 10:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs(undefined), null);
  assert.equal(retryAfterMs('soon'), null);
});

test('a kept-alive socket the tracker closed as it was reused: a read is sent again on a fresh one, a create is not', async () => {
  // Each connection serves one request; the next one on it is dropped unanswered, as a tracker
  // closing an idle connection just as the client reuses it would.
  const served = new WeakMap<object, number>();
  const seen: string[] = [];
  const closing = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const count = served.get(req.socket) ?? 0;
    served.set(req.socket, count + 1);
    if (count > 0) return void req.socket.resetAndDestroy();
    res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' }).end('{"ok":true}');
  });
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}`;
  let http = new UpstreamHttp(settings(loopbackOk));
  try {
    assert.deepEqual((await http.send({ method: 'GET', url: `${url}/first` })).body, { ok: true });
    assert.deepEqual((await http.send({ method: 'GET', url: `${url}/second` })).body, { ok: true }, 'the read is answered');
    assert.deepEqual(seen, ['GET /first', 'GET /second', 'GET /second'], 'sent again once, on a new connection');

    seen.length = 0;
    http.close();
    http = new UpstreamHttp(settings(loopbackOk));
    await http.send({ method: 'GET', url: `${url}/warm` });
    await assert.rejects(http.send({ method: 'POST', url: `${url}/create`, body: { summary: 'x' } }), (error: unknown) => error instanceof UpstreamFailure && error.kind === 'network' && /ECONNRESET/.test((error as Error).message));
    assert.deepEqual(seen, ['GET /warm', 'POST /create'], 'a create is never sent twice');
  } finally {
    http.close();
    closing.close();
  }
});

test('a download larger than its cap is refused, whether announced or streamed, with nothing thrown after; an error answer is read whole', async () => {
  const big = Buffer.alloc(5000, 0x41);
  const files = createServer((req, res) => {
    if (req.url === '/announced') return void res.writeHead(200, { 'content-length': String(big.length) }).end(big);
    if (req.url === '/streamed') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(big.subarray(0, 60));
      return void setTimeout(() => res.end(big.subarray(60)), 20);
    }
    if (req.url === '/missing') return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: ['not here'], padding: 'x'.repeat(300) }));
    res.writeHead(200).end(big.subarray(0, 50));
  });
  await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  const http = new UpstreamHttp(settings(loopbackOk));
  const escaped: unknown[] = [];
  const onEscape = (error: unknown) => escaped.push(error);
  process.on('uncaughtException', onEscape);
  try {
    for (const path of ['/announced', '/streamed']) {
      await assert.rejects(http.send({ method: 'GET', url: `${url}${path}`, binary: true, maxBodyBytes: 100 }), (error: unknown) => error instanceof UpstreamFailure && error.kind === 'too_large', path);
    }
    // One read holding more than the cap: the case that once threw from a destroyed socket.
    await assert.rejects(http.send({ method: 'GET', url: `${url}/announced`, binary: true, maxBodyBytes: 10 }), (error: unknown) => error instanceof UpstreamFailure && error.kind === 'too_large');
    const missing = await http.send({ method: 'GET', url: `${url}/missing`, binary: true, maxBodyBytes: 10 });
    assert.equal(missing.status, 404);
    assert.deepEqual((missing.body as { errors: string[] }).errors, ['not here']);
    const small = await http.send({ method: 'GET', url: `${url}/small`, binary: true, maxBodyBytes: 100 });
    assert.ok(Buffer.isBuffer(small.body) && small.body.length === 50);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(escaped, []);
  } finally {
    process.off('uncaughtException', onEscape);
    http.close();
    files.close();
  }
});
