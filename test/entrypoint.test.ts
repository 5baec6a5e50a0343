import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recordSecret } from './helpers/db.ts';
import { ENTRYPOINT, runProcess } from './helpers/stdio.ts';

const ROLES: Record<string, string[]> = {
  admin: ['core', 'admin', 'pm', 'gateway'],
  developer: ['core', 'pm', 'gateway'],
  viewer: ['core', 'pm'],
  auditor: ['core', 'admin'],
  agent: ['core', 'pm', 'gateway'],
};
const CLIENTS = ['claude-code', 'claude-desktop', 'cursor', 'vscode'];
const token = recordSecret(`mnd_${'Q'.repeat(43)}`);
const dbPassword = recordSecret('db-pass-word-42');
const postgresEnv = { DATABASE_URL: `postgres://mandate:${dbPassword}@127.0.0.1:5432/mandate`, MANDATE_TOKEN: token };

type McpConfig = { mcpServers: Record<string, { command: string; args: string[]; env: Record<string, string>; type?: string }> };

describe('entrypoint.sh config', () => {
  for (const [role, servers] of Object.entries(ROLES)) {
    test(`AGENT_ROLE=${role}: one entry per server on PostgreSQL, for every client, with no secret in it`, async () => {
      for (const client of CLIENTS) {
        const result = await runProcess(ENTRYPOINT, ['config', '--client', client], { ...postgresEnv, AGENT_ROLE: role });
        assert.equal(result.code, 0, result.stderr);
        const parsed = JSON.parse(result.stdout) as McpConfig & { servers?: McpConfig['mcpServers'] };
        // VS Code's mcp.json names the list "servers".
        const entries = (client === 'vscode' ? parsed.servers : parsed.mcpServers)!;
        assert.deepEqual(Object.keys(entries), servers.map((s) => `mandate-${s}`));
        for (const server of servers) {
          const entry = entries[`mandate-${server}`]!;
          assert.equal(entry.command, ENTRYPOINT);
          assert.deepEqual(entry.args, ['serve', server]);
          assert.equal(entry.env.AGENT_ROLE, role);
          assert.ok('MANDATE_TOKEN' in entry.env && 'DATABASE_URL' in entry.env);
          assert.equal(entry.type, client === 'claude-code' || client === 'vscode' ? 'stdio' : undefined);
        }
        assert.ok(!result.stdout.includes(token) && !result.stdout.includes(dbPassword), 'no secret in the configuration');
      }
    });
  }

  test('embedded database: one composed entry, and mandate config prints the same', async () => {
    const env = { MANDATE_DATA_DIR: '/srv/mandate-data', MANDATE_TOKEN: token, AGENT_ROLE: 'auditor' };
    const viaEntrypoint = await runProcess(ENTRYPOINT, ['config', '--client', 'cursor'], env);
    const config = JSON.parse(viaEntrypoint.stdout) as McpConfig;
    assert.deepEqual(Object.keys(config.mcpServers), ['mandate']);
    assert.deepEqual(config.mcpServers.mandate!.args, ['serve']);
    assert.equal(config.mcpServers.mandate!.env.MANDATE_DATA_DIR, '/srv/mandate-data');
    assert.equal(config.mcpServers.mandate!.env.MANDATE_TOKEN, '${env:MANDATE_TOKEN}');
    const viaCli = await runProcess(process.execPath, ['bin/mandate.js', 'config', '--role', 'auditor', '--client', 'cursor'], env);
    assert.equal(viaCli.code, 0, viaCli.stderr);
    assert.deepEqual(JSON.parse(viaCli.stdout), config);
  });
});

describe('client configuration for every way a person connects', () => {
  test('entrypoint.sh config with no --client prints the Claude Code entry', async () => {
    const result = await runProcess(ENTRYPOINT, ['config'], { ...postgresEnv, AGENT_ROLE: 'developer' });
    assert.equal(result.code, 0, result.stderr);
    const config = JSON.parse(result.stdout) as McpConfig;
    assert.deepEqual(Object.keys(config.mcpServers), ['mandate-core', 'mandate-pm', 'mandate-gateway']);
    assert.equal(config.mcpServers['mandate-core']!.type, 'stdio');
    assert.equal(config.mcpServers['mandate-core']!.env.MANDATE_TOKEN, '${MANDATE_TOKEN}');
  });

  test('mandate config --url prints each client\'s HTTP entry, with the token only as a reference', async () => {
    const url = 'https://mandate.example.com';
    const config = async (client: string) => {
      const result = await runProcess(process.execPath, ['bin/mandate.js', 'config', '--url', `${url}/`, '--client', client], postgresEnv);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(!result.stdout.includes(token) && !result.stdout.includes(dbPassword), `no secret in the ${client} configuration`);
      return result.stdout;
    };
    assert.equal(await config('claude-code'), `claude mcp add --transport http mandate ${url}/mcp --header "Authorization: Bearer \${MANDATE_TOKEN}"\n`);
    const cursor = JSON.parse(await config('cursor'));
    assert.deepEqual(cursor.mcpServers.mandate, { url: `${url}/mcp`, headers: { Authorization: 'Bearer ${env:MANDATE_TOKEN}' } });
    const vscode = JSON.parse(await config('vscode'));
    assert.equal(vscode.servers.mandate.type, 'http');
    assert.equal(vscode.servers.mandate.url, `${url}/mcp`);
    assert.equal(vscode.servers.mandate.headers.Authorization, 'Bearer ${input:mandate-token}');
    assert.equal(vscode.inputs[0].password, true);
    const desktop = JSON.parse(await config('claude-desktop'));
    assert.deepEqual(desktop.mcpServers.mandate.args.slice(1, 3), ['mcp-remote', `${url}/mcp`]);
    // With OAuth (--auth oauth; claude.ai and ChatGPT take nothing else): the URL alone, no token.
    const oauth = async (client: string) => {
      const result = await runProcess(process.execPath, ['bin/mandate.js', 'config', '--url', url, '--client', client, '--auth', 'oauth'], postgresEnv);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stdout, /MANDATE_TOKEN|Authorization|Bearer/, `${client}: no token at all`);
      return result.stdout;
    };
    assert.equal(await oauth('claude-code'), `claude mcp add --transport http mandate ${url}/mcp\n`);
    assert.deepEqual(JSON.parse(await oauth('cursor')).mcpServers.mandate, { url: `${url}/mcp` });
    assert.deepEqual(JSON.parse(await oauth('vscode')).servers.mandate, { type: 'http', url: `${url}/mcp` });
    assert.deepEqual(JSON.parse(await oauth('claude-desktop')).mcpServers.mandate.args, ['-y', 'mcp-remote', `${url}/mcp`]);
    assert.match(await oauth('claude-ai'), /Add custom connector.*https:\/\/mandate\.example\.com\/mcp/);
    assert.match(await oauth('chatgpt'), /OAuth/);
    const stdioOnly = await runProcess(process.execPath, ['bin/mandate.js', 'config', '--client', 'claude-ai', '--role', 'admin'], postgresEnv);
    assert.equal(stdioOnly.code, 2);
    assert.match(stdioOnly.stderr, /connects over HTTP only/);
    const bad = await runProcess(process.execPath, ['bin/mandate.js', 'config', '--url', 'https://x.example/$(id)'], postgresEnv);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--url must be/);
  });
});

describe('entrypoint.sh refusals exit non-zero with a clear line', () => {
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['unknown role', ['serve'], { AGENT_ROLE: 'wizard' }, /unknown role "wizard"/],
    ['unknown server', ['serve', 'billing'], { AGENT_ROLE: 'admin' }, /unknown server "billing"/],
    ["a server the role does not get", ['serve', 'admin'], { AGENT_ROLE: 'developer' }, /does not get the admin server/],
    ['no role', ['serve'], {}, /AGENT_ROLE is not set/],
    ['unknown client', ['config', '--client', 'emacs'], { AGENT_ROLE: 'admin' }, /--client must be one of/],
    ['unknown command', ['launch'], { AGENT_ROLE: 'admin' }, /usage: entrypoint.sh/],
  ];
  for (const [name, args, env, message] of cases) {
    test(name, async () => {
      const result = await runProcess(ENTRYPOINT, args, { ...env, MANDATE_TOKEN: token, MANDATE_DATA_DIR: 'memory://' });
      assert.notEqual(result.code, 0);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    });
  }
});
