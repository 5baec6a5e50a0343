import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Server } from 'node:http';
import { createHttpServer, listen } from '../lib/http/server.ts';
import * as ops from '../lib/ops/index.ts';
import { recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { makeUser } from './helpers/fixtures.ts';
import { freePort } from './helpers/oauth.ts';
import { Browser, formOf } from './helpers/oauth-flow.ts';
import { ROOT } from './helpers/cli.ts';

// mcp-remote, the stdio bridge Claude Desktop users run, started with no header at all: it must
// find the authorization server from the 401, register, send the user to the sign-in page (the
// test plays the browser), exchange the code and then list the caller's tools.

let rt: TestRuntime;
let server: Server;
let base = '';
let home = '';
const password = recordSecret('mcp-remote password 1');
let email = '';

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  rt = await testRuntime({ env: { MANDATE_PUBLIC_URL: base } });
  server = createHttpServer(rt, rt.config.http);
  await listen(server, '127.0.0.1', port);
  const user = await makeUser(rt, { roles: ['developer'] });
  email = user.email;
  assert.ok((await rt.runner.run(ops.resetPassword, { kind: 'system', name: 'test' }, { user_id: user.id, password })).ok);
  home = mkdtempSync(join(tmpdir(), 'mandate-mcp-remote-'));
  // mcp-remote opens the URL with xdg-open: here a no-op, the test is the browser.
  writeFileSync(join(home, 'xdg-open'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(home, 'xdg-open'), 0o755);
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rt.close();
  rmSync(home, { recursive: true, force: true });
});

function rpc(child: ChildProcess, lines: AsyncIterator<string>) {
  let id = 0;
  return async (method: string, params: Record<string, unknown> = {}) => {
    const mine = ++id;
    child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: mine, method, params })}\n`);
    for (;;) {
      const next = await lines.next();
      if (next.done) throw new Error('mcp-remote closed its output');
      const message = JSON.parse(next.value) as { id?: number; result?: unknown; error?: unknown };
      if (message.id === mine) return message;
    }
  };
}

test('mcp-remote without any header: 401 → discovery → registration → sign-in and consent → tools/list as the user', async () => {
  const callbackPort = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/mcp-remote/dist/proxy.js'), `${base}/mcp/core`, String(callbackPort), '--allow-http'], {
    env: { PATH: `${home}:${process.env.PATH ?? ''}`, HOME: home, MCP_REMOTE_CONFIG_DIR: join(home, '.mcp-auth') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  try {
    const authorizationUrl = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mcp-remote printed no authorization URL:\n${stderr}`)), 30_000);
      createInterface({ input: child.stderr! }).on('line', (line) => {
        stderr += `${line}\n`;
        const match = /(https?:\/\/\S+\/oauth\/authorize\?\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.on('exit', (code) => reject(new Error(`mcp-remote exited with ${code}:\n${stderr}`)));
    });
    const url = new URL(authorizationUrl);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(url.searchParams.get('resource'), `${base}/mcp/core`);

    // The browser's part: sign in, allow; the last redirect goes to mcp-remote's callback.
    const browser = new Browser(base);
    let page = await browser.follow(await browser.get(url.pathname + url.search));
    const login = formOf(await (page as Response).text());
    page = await browser.follow(await browser.post(`/oauth/interaction/${login.uid}/login`, { csrf: login.csrf, email, password }));
    const consent = formOf(await (page as Response).text());
    const landed = await browser.follow(await browser.post(`/oauth/interaction/${consent.uid}/consent`, { csrf: consent.csrf, permission: ['pm:read', 'pm:write', 'installs:write'] }));
    assert.ok(landed instanceof URL, 'the consent redirects to the client');
    assert.equal(landed.port, String(callbackPort));
    recordSecret(landed.searchParams.get('code')!);
    const delivered = await fetch(landed);
    assert.equal(delivered.status, 200);

    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const call = rpc(child, lines);
    const init = await call('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'mcp-remote-test', version: '1' } });
    assert.ok(init.result, JSON.stringify(init));
    child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
    const listed = (await call('tools/list')) as { result?: { tools: { name: string }[] } };
    const names = listed.result!.tools.map((t) => t.name);
    assert.ok(names.includes('whoami') && names.includes('list_my_oauth_grants'), names.join(', '));
    const me = (await call('tools/call', { name: 'whoami', arguments: {} })) as { result?: { structuredContent?: { user: { email: string } } } };
    assert.equal(me.result!.structuredContent!.user.email, email);
  } finally {
    // Its stderr is mcp-remote's own (it may print the code it received): not kept for the sweep.
    child.kill();
  }
});
