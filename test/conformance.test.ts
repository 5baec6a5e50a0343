import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import * as ops from '../lib/ops/index.ts';
import { User } from '../lib/db/entities/index.ts';
import { makeToken } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret } from './helpers/db.ts';
import { processDatabase, ROOT, type ProcessDatabase } from './helpers/stdio.ts';
import { startServe, type ServeProcess } from './helpers/serve.ts';

// The official MCP conformance suite's server scenarios against a real `mandate serve` (with the
// tools those scenarios call preloaded from test/fixtures/protocol-tools.ts), through a proxy that
// adds the caller's token the way a client configured with it would. The suite's client sends none.

const SCENARIOS = [
  'server-initialize',
  'ping',
  'tools-list',
  'logging-set-level',
  'tools-call-with-logging',
  'tools-call-with-progress',
  'dns-rebinding-protection',
  'server-sse-multiple-streams',
];

let db: ProcessDatabase;
let serve: ServeProcess;
let proxy: Server;
let proxyUrl: string;
let token: string;
let target = '';

before(async () => {
  db = await processDatabase();
  token = await db.use(async (rt) => {
    const created = await rt.runner.run(ops.createUser, { kind: 'system', name: 'test' }, { email: 'conformance@example.test', password: recordSecret('conformance password 1'), roles: ['developer'] });
    assert.ok(created.ok);
    const user = await rt.db.orm.em.fork().findOneOrFail(User, { id: (created.value as { id: string }).id });
    return recordSecret((await makeToken(rt, user)).raw);
  });
  // Headers (Host and Origin too) pass unchanged, so the rebinding scenario's foreign Host reaches Mandate.
  proxy = createServer((req, res) => {
    const upstream = request(`${target}${req.url}`, { method: req.method, headers: { ...req.headers, authorization: `Bearer ${token}` } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://localhost:${(proxy.address() as { port: number }).port}`;
  // An operator behind a proxy allows the origin clients see.
  serve = await startServe({ ...db.env, MANDATE_ALLOWED_ORIGINS: proxyUrl }, 0, ['--import', './test/fixtures/protocol-tools.ts']);
  target = serve.url;
});
after(async () => {
  proxy?.closeAllConnections();
  proxy?.close();
  await serve?.stop();
  db?.dispose();
  assert.ok(!serve.logs().includes(token), 'no token in the server log');
});

for (const scenario of SCENARIOS) {
  test(`conformance scenario ${scenario} passes`, async () => {
    const cli = join(ROOT, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
    // Not spawnSync: this process runs the proxy the scenario's requests go through.
    const result = await promisify(execFile)(process.execPath, [cli, 'server', '--url', `${proxyUrl}/mcp`, '--scenario', scenario], { encoding: 'utf8', timeout: 60_000 })
      .then(({ stdout, stderr }) => ({ code: 0, output: `${stdout}\n${stderr}` }), (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? 1, output: `${error.stdout}\n${error.stderr}` }));
    keepArtifact('conformance', result.output);
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /Passed: (\d+)\/\1, 0 failed/, result.output);
    assert.ok(!result.output.includes(token), 'the token is never echoed');
  });
}
