import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError, loadConfig } from '../lib/config.ts';
import { OpError } from '../lib/errors.ts';
import { createLogger } from '../lib/log.ts';
import { openRuntime } from '../lib/runtime.ts';
import { newVaultKeyLine, openVault, parseVaultKey, Vault, VaultError } from '../lib/vault.ts';
import { McpInstallation } from '../lib/db/entities/index.ts';
import * as ops from '../lib/ops/index.ts';
import { openInstallationSecrets, resealInstallationSecrets } from '../lib/ops/installs.ts';
import { createPostgresDatabase, recordSecret, TEST_DB, testVaultKey } from './helpers/db.ts';

const keyA = parseVaultKey(testVaultKey('a'), 'A');
const keyB = parseVaultKey(testVaultKey('b'), 'B');
const PLAIN = recordSecret('vault plaintext secret 1');

test('seal and open: AES-256-GCM with the key id in the ciphertext, a fresh IV every time', () => {
  const vault = new Vault(keyA);
  const one = vault.seal(PLAIN, 'ctx');
  const two = vault.seal(PLAIN, 'ctx');
  assert.match(one, /^mv1:a:[A-Za-z0-9_-]{16}:[A-Za-z0-9_-]+$/);
  assert.notEqual(one, two);
  assert.ok(!one.includes(PLAIN) && !one.includes(Buffer.from(PLAIN).toString('base64')));
  assert.equal(vault.open(one, 'ctx'), PLAIN);
  assert.equal(vault.open(two, 'ctx'), PLAIN);
});

test('a ciphertext opens only in its own context, and an altered one not at all; errors carry no secret', () => {
  const vault = new Vault(keyA);
  const sealed = vault.seal(PLAIN, 'mcp_installation:1:API_KEY');
  assert.throws(() => vault.open(sealed, 'mcp_installation:2:API_KEY'), (e: Error) => e instanceof VaultError && !e.message.includes(PLAIN));
  const parts = sealed.split(':');
  const data = Buffer.from(parts[3]!, 'base64url');
  data[0] = data[0]! ^ 1;
  const altered = [...parts.slice(0, 3), data.toString('base64url')].join(':');
  assert.throws(() => vault.open(altered, 'mcp_installation:1:API_KEY'), /did not authenticate/);
  assert.throws(() => vault.open('plaintext', 'x'), /not in the vault format/);
});

test('key rotation: the new key seals, previous keys still open; without the old key the error names it', () => {
  const old = new Vault(keyA).seal(PLAIN, 'ctx');
  const rotated = new Vault(keyB, [keyA]);
  assert.equal(rotated.open(old, 'ctx'), PLAIN);
  assert.equal(rotated.isStale(old), true);
  const resealed = rotated.seal(rotated.open(old, 'ctx'), 'ctx');
  assert.equal(rotated.isStale(resealed), false);
  assert.match(resealed, /^mv1:b:/);
  assert.throws(() => new Vault(keyB).open(old, 'ctx'), /vault key "a", which is not configured/);
});

test('keys are checked at start; no vault key means no secrets can be stored, with a clear reason', () => {
  const material = Buffer.alloc(16, 7).toString('base64');
  assert.throws(
    () => loadConfig({ MANDATE_DATA_DIR: 'memory://', MANDATE_VAULT_KEY: `k1:${material}` }),
    (e: Error) => e instanceof ConfigError && /MANDATE_VAULT_KEY/.test(e.message) && /32 bytes/.test(e.message) && !e.message.includes(material),
  );
  assert.throws(() => loadConfig({ MANDATE_DATA_DIR: 'memory://', MANDATE_VAULT_KEY: 'no key id here' }), /MANDATE_VAULT_KEY must look like/);
  assert.throws(() => loadConfig({ MANDATE_DATA_DIR: 'memory://', MANDATE_VAULT_PREVIOUS_KEYS: `ok:${material}` }), /MANDATE_VAULT_PREVIOUS_KEYS/);
  const onPostgres = openVault(loadConfig({ DATABASE_URL: 'postgres://localhost/x' }).vault);
  assert.equal(onPostgres.configured, false);
  assert.throws(() => onPostgres.seal(PLAIN, 'ctx'), (e: Error) => e instanceof OpError && e.code === 'unavailable' && /MANDATE_VAULT_KEY is not set/.test(e.message));
  assert.match(newVaultKeyLine('x'), /^x:[A-Za-z0-9+/]{43}=$/);
});

test('an embedded data directory without a configured key gets a key file (0600) that later starts reuse', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-vault-'));
  try {
    const settings = loadConfig({ MANDATE_DATA_DIR: dir }).vault;
    const first = openVault(settings);
    const sealed = first.seal(PLAIN, 'ctx');
    const file = join(dir, 'vault.key');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(!readFileSync(file, 'utf8').includes(PLAIN));
    assert.equal(openVault(settings).open(sealed, 'ctx'), PLAIN);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rotating the vault key keeps existing installations readable, through restarts on the same database', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-rotate-'));
  const database = TEST_DB === 'postgres' ? { DATABASE_URL: await createPostgresDatabase() } : { MANDATE_DATA_DIR: dir };
  const lineA = `a:${keyA.key.toString('base64')}`;
  const lineB = `b:${keyB.key.toString('base64')}`;
  const quiet = createLogger({ level: 'silent', stream: new Writable({ write: (_c, _e, done) => done() }) });
  const open = (env: Record<string, string>) => openRuntime(loadConfig({ ...database, ...env }), { command: 'test', log: quiet });
  const system = { kind: 'system', name: 'test' } as const;
  const secretsOf = async (runtime: Awaited<ReturnType<typeof open>>, id: string) =>
    openInstallationSecrets(runtime.vault, await runtime.db.orm.em.fork().findOneOrFail(McpInstallation, { id }));
  try {
    let runtime = await open({ MANDATE_VAULT_KEY: lineA });
    const user = await runtime.runner.run(ops.createUser, system, { email: 'rotate@example.test' });
    assert.ok(user.ok);
    assert.ok((await runtime.runner.run(ops.createMcpCatalogEntry, system, { name: 'rotating', transport: 'remote', url: 'https://x.example.test', credential_fields: [{ name: 'API_KEY' }, { name: 'OTHER', required: false }] })).ok);
    const installed = await runtime.runner.run(ops.installMcpServer, system, { catalog_id: 'rotating', user_id: user.value.id, secrets: { API_KEY: PLAIN } });
    assert.ok(installed.ok, JSON.stringify(installed));
    const id = installed.value.id;
    await runtime.close();

    runtime = await open({ MANDATE_VAULT_KEY: lineB, MANDATE_VAULT_PREVIOUS_KEYS: lineA });
    assert.deepEqual(await secretsOf(runtime, id), { API_KEY: PLAIN });
    // A value set after the rotation is sealed with the new key; the old one still opens.
    assert.ok((await runtime.runner.run(ops.updateMcpServer, system, { id, secrets: { OTHER: 'other value' } })).ok);
    const row = await runtime.db.orm.em.fork().findOneOrFail(McpInstallation, { id });
    assert.match(row.secrets.API_KEY!, /^mv1:a:/);
    assert.match(row.secrets.OTHER!, /^mv1:b:/);
    assert.deepEqual(await secretsOf(runtime, id), { API_KEY: PLAIN, OTHER: 'other value' });
    // Without key a, the secret it sealed cannot be opened, and the error says which key is missing.
    assert.throws(() => openInstallationSecrets(new Vault(keyB), row), /vault key "a", which is not configured/);
    // `mandate vault reseal` moves everything onto the current key; then a can go.
    assert.deepEqual(await resealInstallationSecrets(runtime.db.orm.em.fork(), runtime.vault, system), { installations: 1, secrets: 1 });
    await runtime.close();

    runtime = await open({ MANDATE_VAULT_KEY: lineB });
    assert.deepEqual(await secretsOf(runtime, id), { API_KEY: PLAIN, OTHER: 'other value' });
    const audit = await runtime.db.orm.em.fork().execute<{ detail: unknown }[]>("select detail from audit_event where operation = 'reseal_secrets'");
    assert.deepEqual(audit.map((r) => r.detail), [{ installations: 1, secrets: 1, keyId: 'b' }]);
    await runtime.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
