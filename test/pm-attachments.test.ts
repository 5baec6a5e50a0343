import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { MAX_UPLOAD_BYTES } from '../lib/ops/pm/attachments.ts';
import { servedBy } from '../lib/pm/settings.ts';
import { makeUser } from './helpers/fixtures.ts';
import { toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser } from './helpers/fake-jira.ts';
import { FakeOpenProject, type FakeOpUser } from './helpers/fake-openproject.ts';
import { specsMissing } from './helpers/openapi.ts';

// Attachments on Jira Cloud, Jira Data Center and OpenProject (fakes; Redmine: test/pm-redmine.test.ts):
// listed, downloaded as text or base64 under a cap checked before any download, uploaded from
// base64 as each tracker documents it, deleted; an attachment is reached only through its issue.

interface World {
  provider: string;
  credentials(who: 'alice' | 'bob'): Record<string, string>;
  secrets: string[];
  /** alice's issue, another issue of hers, and one only bob sees. */
  issues: { mine: string; other: string; bobs: string };
  /** Requests that carried an attachment's bytes (downloads), and any request at all. */
  downloads(): number;
  requests(): { method: string; path: string; query: URLSearchParams }[];
  mismatches(): string[];
  stop(): Promise<void>;
}

async function jiraWorld(flavor: 'cloud' | 'dc'): Promise<World> {
  const user = (name: string, projects: string[]): FakeUser => ({
    accountId: `5b10a2844c20165700ede${name.length}${name}`, name, displayName: name, emailAddress: `${name}@corp.test`,
    secret: recordSecret(`att-${flavor}-${name}-${Math.random().toString(36).slice(2)}`), projects,
  });
  const users = { alice: user('alice', ['ACME']), bob: user('bob', ['BOBS']) };
  const fake = await new FakeJira(flavor, [users.alice, users.bob]).start();
  const mine = fake.addIssue('ACME').key;
  const other = fake.addIssue('ACME').key;
  const bobs = fake.addIssue('BOBS').key;
  const download = flavor === 'cloud' ? '/rest/api/3/attachment/content/' : '/secure/attachment/';
  return {
    provider: flavor === 'cloud' ? 'jira_cloud' : 'jira_dc',
    credentials: (who) => ({ base_url: fake.url, ...(flavor === 'cloud' ? { email: users[who].emailAddress, api_token: users[who].secret } : { token: users[who].secret }) }),
    secrets: [users.alice.secret, users.bob.secret],
    issues: { mine, other, bobs },
    downloads: () => fake.requests.filter((r) => r.path.startsWith(download)).length,
    requests: () => fake.requests,
    mismatches: () => fake.takeMismatches(),
    stop: () => fake.stop(),
  };
}

async function openProjectWorld(): Promise<World> {
  const users: Record<'alice' | 'bob', FakeOpUser> = {
    alice: { id: 3, login: 'alice', name: 'Alice Doe', apiKey: recordSecret(`op-att-alice-${Math.random().toString(36).slice(2)}`), projects: ['alpha'] },
    bob: { id: 4, login: 'bob', name: 'Bob Roe', apiKey: recordSecret(`op-att-bob-${Math.random().toString(36).slice(2)}`), projects: ['beta'] },
  };
  const fake = await new FakeOpenProject([users.alice, users.bob]).start();
  fake.addProject('alpha', 'Alpha');
  fake.addProject('beta', 'Beta');
  const mine = String(fake.addWorkPackage('alpha', users.alice).id);
  const other = String(fake.addWorkPackage('alpha', users.alice).id);
  const bobs = String(fake.addWorkPackage('beta', users.bob).id);
  return {
    provider: 'openproject',
    credentials: (who) => ({ base_url: fake.url, api_key: users[who].apiKey }),
    secrets: [users.alice.apiKey, users.bob.apiKey],
    issues: { mine, other, bobs },
    downloads: () => fake.requests.filter((r) => /^\/api\/v3\/attachments\/\d+\/content$/.test(r.path)).length,
    requests: () => fake.requests,
    mismatches: () => fake.takeViolations(),
    stop: () => fake.stop(),
  };
}

const missing = specsMissing();
const WORLDS: [string, () => Promise<World>, string | null][] = [['Jira Cloud', () => jiraWorld('cloud'), missing], ['Jira Data Center', () => jiraWorld('dc'), missing], ['OpenProject', openProjectWorld, null]];

// A PNG's first bytes: NUL and bytes that are not UTF-8, so never text.
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0xff, 0xfe]);
const NOTES = 'Release notes\n- fixed ünïcode\n';

for (const [label, start, unavailable] of WORLDS) {
  describe(`attachments on ${label}`, { skip: unavailable ?? false }, () => {
    let world: World;
    let rt: TestRuntime;
    let alice: User;
    let bob: User;
    const responses: string[] = [];
    const { ok, refused } = toolCaller(() => rt, responses);
    const ids: Record<string, string> = {};

    before(async () => {
      world = await start();
      rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_PM_ALLOW_DELETE: 'true' } });
      alice = await makeUser(rt, { roles: ['developer'] });
      bob = await makeUser(rt, { roles: ['developer'] });
      await ok(alice, 'add_pm_connection', { provider: world.provider, ...world.credentials('alice') });
      await ok(bob, 'add_pm_connection', { provider: world.provider, ...world.credentials('bob') });
    });
    afterEach(() => assert.deepEqual(world.mismatches(), []));
    after(async () => {
      keepArtifact('responses', responses.join('\n'));
      for (const secret of world.secrets) assert.ok(!responses.join('\n').includes(secret), 'no credential in any result');
      await rt?.close();
      await world?.stop();
    });

    test('upload from base64, list, and download: text as text, binary as base64, both byte for byte', async () => {
      const notes = await ok(alice, 'add_attachment', { key: world.issues.mine, filename: 'notes "v2".md', mime_type: 'text/markdown', content_base64: Buffer.from(NOTES).toString('base64') });
      assert.equal(notes.filename, 'notes "v2".md');
      assert.equal(notes.size, Buffer.byteLength(NOTES));
      const image = await ok(alice, 'add_attachment', { key: world.issues.mine, filename: 'shot.png', mime_type: 'image/png', content_base64: PNG.toString('base64') });
      const other = await ok(alice, 'add_attachment', { key: world.issues.other, filename: 'other.txt', content_base64: Buffer.from('other issue').toString('base64') });
      Object.assign(ids, { notes: notes.id, image: image.id, other: other.id });

      const listed = (await ok(alice, 'list_attachments', { key: world.issues.mine })).items;
      assert.deepEqual(listed.map((a: any) => [a.filename, a.mime_type, a.size]), [['notes "v2".md', 'text/markdown', Buffer.byteLength(NOTES)], ['shot.png', 'image/png', PNG.length]]);
      assert.equal(listed[0].author.name.toLowerCase().startsWith('alice'), true);

      const text = await ok(alice, 'get_attachment', { key: world.issues.mine, attachment_id: notes.id });
      assert.deepEqual([text.encoding, text.content], ['text', NOTES]);
      const asBase64 = await ok(alice, 'get_attachment', { key: world.issues.mine, attachment_id: notes.id, encoding: 'base64' });
      assert.equal(Buffer.from(asBase64.content, 'base64').toString(), NOTES);
      const binary = await ok(alice, 'get_attachment', { key: world.issues.mine, attachment_id: image.id });
      assert.equal(binary.encoding, 'base64');
      assert.deepEqual(Buffer.from(binary.content, 'base64'), PNG);
      const notText = await refused(alice, 'get_attachment', { key: world.issues.mine, attachment_id: image.id, encoding: 'text' });
      assert.deepEqual([notText.code, notText.field], ['invalid_input', 'encoding']);
      assert.match(notText.message, /not UTF-8 text.*base64/);
      const octets = await ok(alice, 'get_attachment', { key: world.issues.other, attachment_id: other.id });
      assert.equal(octets.encoding, 'base64', 'application/octet-stream is not guessed to be text');
    });

    if (label === 'Jira Cloud') {
      test('Jira Cloud: the bytes come from the API itself (redirect=false), not a redirect to another host', async () => {
        const content = world.requests().filter((r) => r.path.startsWith('/rest/api/3/attachment/content/'));
        assert.ok(content.length >= 3);
        assert.ok(content.every((r) => r.query.get('redirect') === 'false'));
      });
    }

    test('a file over max_bytes is refused before any download; a cap above the limit is refused on its field', async () => {
      const before = world.downloads();
      const big = await refused(alice, 'get_attachment', { key: world.issues.mine, attachment_id: ids.notes!, max_bytes: 5 });
      assert.deepEqual([big.code, big.field], ['invalid_input', 'max_bytes']);
      assert.match(big.message, /is \d+ bytes, more than max_bytes \(5\)/);
      assert.equal(world.downloads(), before, 'nothing was downloaded');
      const tooHigh = await refused(alice, 'get_attachment', { key: world.issues.mine, attachment_id: ids.notes!, max_bytes: 11 * 1024 * 1024 });
      assert.equal(tooHigh.field, 'max_bytes');
    });

    test('an attachment is reached through its own issue only: another issue\'s id is not found, and nothing is downloaded or deleted', async () => {
      const before = world.requests().length;
      const downloads = world.downloads();
      const crossed = await refused(alice, 'get_attachment', { key: world.issues.mine, attachment_id: ids.other! });
      assert.deepEqual([crossed.code, crossed.field], ['not_found', 'attachment_id']);
      const crossDelete = await refused(alice, 'delete_attachment', { key: world.issues.mine, attachment_id: ids.other! });
      assert.equal(crossDelete.code, 'not_found');
      assert.equal(world.downloads(), downloads);
      assert.ok(world.requests().slice(before).every((r) => r.method === 'GET'), 'no DELETE left Mandate');
      assert.equal((await ok(alice, 'list_attachments', { key: world.issues.other })).items.length, 1, 'the other issue keeps its file');
    });

    test('bob\'s own credentials do not reach alice\'s issue or its files', async () => {
      const downloads = world.downloads();
      for (const [name, input] of [['list_attachments', {}], ['get_attachment', { attachment_id: ids.notes! }], ['delete_attachment', { attachment_id: ids.notes! }], ['add_attachment', { filename: 'x.txt', content_base64: 'eA==' }]] as const) {
        const denied = await refused(bob, name, { key: world.issues.mine, ...input });
        assert.ok(['not_found', 'forbidden'].includes(denied.code), `${name}: ${denied.code}`);
      }
      assert.equal(world.downloads(), downloads);
      assert.equal((await ok(alice, 'list_attachments', { key: world.issues.mine })).items.length, 2, 'alice\'s files are untouched');
    });

    test('bad uploads are refused on their field before any request: base64, file names, size', async () => {
      const before = world.requests().length;
      const cases: [Record<string, unknown>, string][] = [
        [{ filename: 'a.txt', content_base64: 'not base64!' }, 'content_base64'],
        [{ filename: 'a.txt', content_base64: 'eA' }, 'content_base64'],
        [{ filename: 'a.txt', content_base64: 'eA==\n' }, 'content_base64'],
        [{ filename: '../etc/passwd', content_base64: 'eA==' }, 'filename'],
        [{ filename: 'a\u0000.txt', content_base64: 'eA==' }, 'filename'],
        [{ filename: 'a\r\nX-Injected: 1', content_base64: 'eA==' }, 'filename'],
        [{ filename: '..', content_base64: 'eA==' }, 'filename'],
        [{ filename: 'a.txt', content_base64: 'eA==', mime_type: 'text/plain\r\nX: 1' }, 'mime_type'],
        [{ filename: 'a.txt', content_base64: Buffer.alloc(MAX_UPLOAD_BYTES + 1).toString('base64') }, 'content_base64'],
      ];
      for (const [input, field] of cases) {
        const bad = await refused(alice, 'add_attachment', { key: world.issues.mine, ...input });
        assert.deepEqual([bad.code, bad.field], ['invalid_input', field], JSON.stringify(input).slice(0, 80));
      }
      assert.equal(world.requests().length, before, 'no request left Mandate');
    });

    test('delete removes the file for good (served only where deleting is enabled)', async () => {
      const removed = await ok(alice, 'delete_attachment', { key: world.issues.mine, attachment_id: ids.image! });
      assert.deepEqual(removed, { key: world.issues.mine, attachment_id: ids.image, deleted: true });
      assert.deepEqual((await ok(alice, 'list_attachments', { key: world.issues.mine })).items.map((a: any) => a.id), [ids.notes]);
      assert.equal((await refused(alice, 'get_attachment', { key: world.issues.mine, attachment_id: ids.image! })).code, 'not_found');
      const served = servedBy({ toolsets: new Set(['attachments']), allowDelete: false });
      assert.equal(served(OPERATIONS.delete_attachment!), false);
      assert.equal(served(OPERATIONS.add_attachment!), true);
    });
  });
}
