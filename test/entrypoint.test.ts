import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { recordSecret } from './helpers/db.ts';
import { ENTRYPOINT, runProcess } from './helpers/stdio.ts';

const ROLES: Record<string, string[]> = {
  admin: ['core', 'admin', 'pm'],
  developer: ['core', 'pm'],
  viewer: ['core', 'pm'],
  auditor: ['core', 'admin'],
  agent: ['core', 'pm'],
};
const CLIENTS = ['claude-code', 'claude-desktop', 'cursor'];
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
        const config = JSON.parse(result.stdout) as McpConfig;
        assert.deepEqual(Object.keys(config.mcpServers), servers.map((s) => `mandate-${s}`));
        for (const server of servers) {
          const entry = config.mcpServers[`mandate-${server}`]!;
          assert.equal(entry.command, ENTRYPOINT);
          assert.deepEqual(entry.args, ['serve', server]);
          assert.equal(entry.env.AGENT_ROLE, role);
          assert.ok('MANDATE_TOKEN' in entry.env && 'DATABASE_URL' in entry.env);
          assert.equal(entry.type, client === 'claude-code' ? 'stdio' : undefined);
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
