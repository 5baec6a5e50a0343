import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { makeUser } from './helpers/fixtures.ts';
import { everySearchPage, toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { redmineUnavailable, rotateApiKey, startRedmine, type RedmineWorld } from './helpers/redmine.ts';

// Against a real Redmine: each user's tools act with that user's own API key, so each sees and
// changes only what Redmine lets that user see and change.

const unavailable = redmineUnavailable();
if (unavailable) console.log(`# skipping the Redmine integration test: ${unavailable}`);

describe('Redmine (real server)', { skip: unavailable ?? false }, () => {
  let redmine: RedmineWorld;
  let rt: TestRuntime;
  let alice: User;
  let bob: User;
  const connection: Record<string, string> = {};
  const responses: string[] = [];

  const { call, ok, refused } = toolCaller(() => rt, responses);

  before(async () => {
    redmine = await startRedmine();
    recordSecret(redmine.keys.alice);
    recordSecret(redmine.keys.bob);
    rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_PM_ALLOW_DELETE: 'true' } });
    alice = await makeUser(rt, { roles: ['developer'] });
    bob = await makeUser(rt, { roles: ['developer'] });
    connection.alice = (await ok(alice, 'add_pm_connection', { provider: 'redmine', base_url: redmine.url, api_key: redmine.keys.alice })).id;
    connection.bob = (await ok(bob, 'add_pm_connection', { provider: 'redmine', base_url: redmine.url, api_key: redmine.keys.bob })).id;
  });

  after(async () => {
    keepArtifact('responses', responses.join('\n'));
    const text = responses.join('\n');
    await redmine?.stop();
    await rt?.close();
    assert.ok(!text.includes(redmine.keys.alice) && !text.includes(redmine.keys.bob), 'no API key in any response');
  });

  test('connections are verified with Redmine and name the upstream account', async () => {
    const [mine] = (await ok(alice, 'list_pm_connections')).items;
    assert.equal(mine.status, 'connected');
    assert.equal(mine.account.name, 'Alice Tester');
    const wrong = await refused(alice, 'add_pm_connection', { provider: 'redmine', base_url: redmine.url, api_key: recordSecret('0123456789abcdef0123456789abcdef01234567'), name: 'wrong' });
    assert.equal(wrong.field, 'api_key');
  });

  test('each user lists only the projects Redmine shows them', async () => {
    const keys = async (user: User) => (await ok(user, 'list_projects', { limit: 100 })).items.map((p: any) => p.key).sort();
    const aliceSees = await keys(alice);
    const bobSees = await keys(bob);
    assert.ok(aliceSees.includes('alice-private') && aliceSees.includes('shared-work'));
    assert.ok(!aliceSees.includes('bob-private'));
    assert.ok(bobSees.includes('bob-private') && !bobSees.includes('alice-private'));
    assert.equal((await refused(bob, 'get_project', { project: 'alice-private' })).code, 'forbidden');
  });

  test('alice\'s private issue: alice reads and changes it, bob can neither read nor change it', async () => {
    const created = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'Private bug', description: 'Steps:\n\n- open **it**\n- see `error`' });
    const got = await ok(alice, 'get_issue', { key: created.key });
    assert.equal(got.summary, 'Private bug');
    assert.equal(got.description, 'Steps:\n\n- open **it**\n- see `error`');
    assert.equal(got.reporter.name, 'Alice Tester');

    assert.equal((await refused(bob, 'get_issue', { key: created.key })).code, 'forbidden');
    assert.equal((await refused(bob, 'update_issue', { key: created.key, summary: 'bob was here' })).code, 'forbidden');
    assert.equal((await refused(bob, 'add_comment', { key: created.key, body: 'hi' })).code, 'forbidden');
    assert.equal((await refused(bob, 'search_issues', { project: 'alice-private' })).code, 'forbidden');
    assert.equal((await ok(alice, 'get_issue', { key: created.key })).summary, 'Private bug', 'unchanged by bob');
    const found = await ok(alice, 'search_issues', { project: 'alice-private', text: 'Private bug' });
    assert.ok(found.items.some((i: any) => i.key === created.key));
    const bobFinds = await ok(bob, 'search_issues', { text: 'Private bug' });
    assert.ok(!bobFinds.items.some((i: any) => i.key === created.key));
  });

  test('bob\'s connection is not alice\'s to use', async () => {
    const stolen = await refused(alice, 'list_projects', { connection: connection.bob });
    assert.equal(stolen.code, 'not_found');
  });

  test('workflow, comments, assignment, time, relations and parent on a shared issue', async () => {
    const issue = await ok(alice, 'create_issue', { project: 'shared-work', type: 'Feature', summary: 'Shared feature', priority: 'High' });
    const child = await ok(bob, 'create_issue', { project: 'shared-work', type: 'Feature', summary: 'Child feature' });
    const transitions = (await ok(alice, 'list_transitions', { key: issue.key })).items.map((t: any) => t.name);
    assert.ok(transitions.includes('In Progress'), transitions.join(','));
    await ok(alice, 'transition_issue', { key: issue.key, name: 'In Progress', comment: 'on it' });
    assert.equal((await ok(bob, 'get_issue', { key: issue.key })).status, 'In Progress');
    const comment = await ok(bob, 'add_comment', { key: issue.key, body: 'looks *good*' });
    assert.equal(comment.body, 'looks *good*');
    const comments = await ok(alice, 'list_comments', { key: issue.key });
    assert.deepEqual(comments.items.map((c: any) => c.body), ['on it', 'looks *good*']);
    const edited = await ok(bob, 'edit_comment', { key: issue.key, comment_id: comment.id, body: 'looks great' });
    assert.equal(edited.body, 'looks great');
    await ok(alice, 'assign_issue', { key: issue.key, assignee: 'Bob Tester' });
    assert.equal((await ok(alice, 'get_issue', { key: issue.key })).assignee.name, 'Bob Tester');
    await ok(alice, 'assign_issue', { key: issue.key, assignee: 'me' });
    assert.equal((await ok(alice, 'search_issues', { assignee: 'me', project: 'shared-work' })).items[0].key, issue.key);
    await ok(alice, 'assign_issue', { key: issue.key, assignee: null });
    assert.equal((await ok(alice, 'get_issue', { key: issue.key })).assignee, null);
    await ok(alice, 'add_worklog', { key: issue.key, time_spent: '1h 30m', comment: 'pairing' });
    const logs = await ok(alice, 'list_worklogs', { key: issue.key });
    assert.deepEqual(logs.items.map((l: any) => [l.seconds, l.comment]), [[5400, 'pairing']]);
    await ok(alice, 'link_issues', { type: 'blocks', from: issue.key, to: child.key });
    const links = (await ok(alice, 'get_issue', { key: issue.key, include: ['links'] })).links;
    assert.deepEqual(links.map((l: any) => [l.relation, l.issue]), [['blocks', child.key]]);
    await ok(bob, 'set_parent', { key: child.key, parent: issue.key });
    assert.equal((await ok(bob, 'get_issue', { key: child.key })).parent, issue.key);
    assert.equal((await refused(alice, 'get_issue', { key: issue.key, fields: ['children'] })).field, 'fields');
    const subtasks = (await ok(alice, 'get_issue', { key: issue.key, include: ['subtasks'] })).subtasks;
    assert.deepEqual(subtasks.map((s: any) => s.key), [child.key]);
  });

  test('metadata, and clear errors for what Redmine does not have', async () => {
    assert.ok((await ok(alice, 'list_statuses')).items.some((s: any) => s.name === 'New'));
    assert.ok((await ok(alice, 'list_priorities')).items.some((p: any) => p.name === 'Urgent'));
    assert.deepEqual((await ok(alice, 'list_issue_types', { project: 'alice-private' })).items.map((t: any) => t.name), ['Bug', 'Feature', 'Support']);
    assert.ok((await ok(alice, 'get_create_fields', { project: 'alice-private', issue_type: 'Bug' })).items.some((f: any) => f.id === 'subject' && f.required));
    const boards = await refused(alice, 'list_boards', {});
    assert.equal(boards.code, 'invalid_input');
    assert.match(boards.message, /Boards is not supported for Redmine/);
    const users = await refused(alice, 'search_users', { query: 'bob' });
    assert.match(users.message, /administrator/);
    const badKey = await refused(alice, 'get_issue', { key: 'ALPHA-1' });
    assert.equal(badKey.field, 'key');
  });

  test('attachments: upload from base64, list, download as text and base64, delete; reached through their own issue only', async () => {
    const issue = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'With files' });
    const other = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'Other files' });
    const text = 'log line 1\nlog line ü\n';
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff, 0xfe]);
    const log = await ok(alice, 'add_attachment', { key: issue.key, filename: 'build.log', mime_type: 'text/plain', content_base64: Buffer.from(text).toString('base64') });
    const image = await ok(alice, 'add_attachment', { key: issue.key, filename: 'shot.png', mime_type: 'image/png', content_base64: png.toString('base64') });
    const elsewhere = await ok(alice, 'add_attachment', { key: other.key, filename: 'other.txt', mime_type: 'text/plain', content_base64: Buffer.from('other').toString('base64') });
    assert.deepEqual([log.filename, log.size, log.author.name], ['build.log', Buffer.byteLength(text), 'Alice Tester']);
    const listed = (await ok(alice, 'list_attachments', { key: issue.key })).items;
    assert.deepEqual(listed.map((a: any) => [a.filename, a.mime_type, a.size]), [['build.log', 'text/plain', Buffer.byteLength(text)], ['shot.png', 'image/png', png.length]]);
    assert.deepEqual(await ok(alice, 'get_attachment', { key: issue.key, attachment_id: log.id }).then((a) => [a.encoding, a.content]), ['text', text]);
    const binary = await ok(alice, 'get_attachment', { key: issue.key, attachment_id: image.id });
    assert.deepEqual([binary.encoding, Buffer.from(binary.content, 'base64')], ['base64', png]);
    assert.equal((await refused(alice, 'get_attachment', { key: issue.key, attachment_id: log.id, max_bytes: 4 })).field, 'max_bytes');
    assert.deepEqual(await refused(alice, 'get_attachment', { key: issue.key, attachment_id: elsewhere.id }).then((e) => [e.code, e.field]), ['not_found', 'attachment_id']);
    assert.equal((await refused(alice, 'delete_attachment', { key: issue.key, attachment_id: elsewhere.id })).code, 'not_found');
    assert.equal((await ok(alice, 'list_attachments', { key: other.key })).items.length, 1, 'the other issue keeps its file');
    assert.equal((await refused(bob, 'list_attachments', { key: issue.key })).code, 'forbidden');
    assert.equal((await refused(bob, 'get_attachment', { key: issue.key, attachment_id: log.id })).code, 'forbidden');
    await ok(alice, 'delete_attachment', { key: issue.key, attachment_id: image.id });
    assert.deepEqual((await ok(alice, 'list_attachments', { key: issue.key })).items.map((a: any) => a.id), [log.id]);
  });

  test('bindings by identifier: pm:write only in SW changes shared-work issues, is refused on alice-private (naming AP), and its searches are confined across pages', async () => {
    const admin = await makeUser(rt, { roles: ['admin'] });
    await ok(admin, 'create_mandate_project', { key: 'SW', name: 'Shared work' });
    await ok(admin, 'create_mandate_project', { key: 'AP', name: 'Alice private' });
    await ok(admin, 'bind_tracker_project', { project: 'SW', tracker: 'redmine', tracker_project: 'shared-work' });
    await ok(admin, 'bind_tracker_project', { project: 'AP', tracker: 'redmine', tracker_project: 'alice-private' });
    // carol's account in Redmine (alice's key here) sees both projects; her Mandate grant is SW's only.
    const carol = await makeUser(rt, { roles: [['developer', 'SW']] });
    await ok(carol, 'add_pm_connection', { provider: 'redmine', base_url: redmine.url, api_key: redmine.keys.alice });
    // Redmine's database outlives a run on the same machine: this run's issue is told by its summary.
    const summary = `Bound and shared ${Math.random().toString(36).slice(2)}`;
    const shared = await ok(alice, 'create_issue', { project: 'shared-work', type: 'Bug', summary });
    const secret = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'Bound elsewhere' });

    await ok(carol, 'add_comment', { key: shared.key, body: 'carol was here' });
    const denied = await refused(carol, 'add_comment', { key: secret.key, body: 'carol should not be here' });
    assert.equal(denied.code, 'forbidden');
    assert.match(denied.message, /add_comment needs pm:write in project AP/);
    assert.match((await refused(carol, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'no' })).message, /in project AP/);
    assert.match((await refused(carol, 'update_issue', { key: secret.key, parent: shared.key })).message, /in project AP/);
    const comments = (await ok(alice, 'list_comments', { key: secret.key })).items.map((c: any) => c.body);
    assert.ok(!comments.includes('carol should not be here'), 'nothing reached Redmine');
    // What would move an issue, or reach another issue's comment, through an issue carol may change.
    const privateId = (await ok(alice, 'get_project', { project: 'alice-private' })).id;
    for (const fields of [{ project_id: Number(privateId) }, { parent_issue_id: Number(secret.key) }]) {
      const moved = await refused(carol, 'update_issue', { key: shared.key, fields });
      assert.deepEqual([moved.code, moved.field], ['invalid_input', `fields.${Object.keys(fields)[0]}`]);
    }
    assert.equal((await refused(carol, 'transition_issue', { key: shared.key, name: 'In Progress', fields: { project_id: Number(privateId) } })).field, 'fields.project_id');
    const note = await ok(alice, 'add_comment', { key: secret.key, body: 'alice only' });
    const crossed = await refused(carol, 'edit_comment', { key: shared.key, comment_id: note.id, body: 'overwritten by carol' });
    assert.deepEqual([crossed.code, crossed.field], ['not_found', 'comment_id']);
    assert.ok((await ok(alice, 'list_comments', { key: secret.key })).items.some((c: any) => c.id === note.id && c.body === 'alice only'), 'the comment is unchanged');
    assert.equal((await ok(alice, 'get_issue', { key: shared.key })).project, 'Project shared-work', 'not moved');

    const confined = await everySearchPage(ok, carol, { limit: 2 });
    assert.ok(confined.pages >= 2, 'paged');
    assert.deepEqual([...confined.projects], ['Project shared-work'], 'only shared-work issues, on every page');
    const keys = confined.keys;
    assert.deepEqual(keys, (await everySearchPage(ok, alice, { project: 'shared-work', limit: 100 })).keys, 'every shared-work issue, page by page');
    assert.ok(keys.includes(shared.key) && !keys.includes(secret.key));
    assert.deepEqual(await refused(carol, 'search_issues', { project: 'alice-private' }).then((e) => [e.code, e.field]), ['forbidden', 'project']);
    assert.equal((await refused(carol, 'search_issues', { query: '1' })).field, 'query');
    const own = await ok(carol, 'search_issues', { project: 'shared-work', text: summary });
    assert.deepEqual(own.items.map((i: any) => i.key), [shared.key]);
  });

  test('delete_issue: Redmine deletes sub-tasks with their parent, so without delete_subtasks a parent is refused', async () => {
    const parent = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'Parent to delete' });
    const child = await ok(alice, 'create_issue', { project: 'alice-private', type: 'Bug', summary: 'Child', parent: parent.key });
    const refusedDelete = await refused(alice, 'delete_issue', { key: parent.key });
    assert.deepEqual([refusedDelete.code, refusedDelete.field], ['invalid_input', 'delete_subtasks']);
    assert.equal((await ok(alice, 'get_issue', { key: child.key })).summary, 'Child', 'nothing deleted');
    await ok(alice, 'delete_issue', { key: parent.key, delete_subtasks: true });
    assert.equal((await refused(alice, 'get_issue', { key: child.key })).code, 'not_found');
  });

  test('search filters combine as Redmine reads them (every one sent as f[]/op/v): text, assignee, status, updated_since', async () => {
    const summary = `Filtered ${Math.random().toString(36).slice(2)}`;
    const issue = await ok(alice, 'create_issue', { project: 'shared-work', type: 'Bug', summary });
    const found = async (input: Record<string, unknown>) => (await ok(alice, 'search_issues', { text: summary, ...input })).items.map((i: any) => i.key);
    assert.deepEqual(await found({}), [issue.key]);
    assert.deepEqual(await found({ assignee: 'none' }), [issue.key]);
    await ok(alice, 'assign_issue', { key: issue.key, assignee: 'Bob Tester' });
    assert.deepEqual(await found({ assignee: 'none' }), []);
    assert.deepEqual(await found({ assignee: 'me' }), []);
    assert.deepEqual(await found({ assignee: 'Bob Tester', project: 'shared-work' }), [issue.key]);
    assert.deepEqual(await found({ status: 'open' }), [issue.key]);
    await ok(alice, 'transition_issue', { key: issue.key, name: 'Closed' });
    assert.deepEqual(await found({ status: 'open' }), []);
    assert.deepEqual(await found({ status: 'closed' }), [issue.key]);
    assert.deepEqual(await found({ status: 'Closed' }), [issue.key]);
    assert.deepEqual(await found({ status: 'New' }), []);
    const day = 24 * 3600 * 1000;
    assert.deepEqual(await found({ updated_since: new Date(Date.now() - day).toISOString() }), [issue.key]);
    assert.deepEqual(await found({ updated_since: new Date(Date.now() + day).toISOString().slice(0, 10) }), []);
    assert.deepEqual(await found({ project: 'alice-private' }), []);
    assert.equal((await refused(alice, 'search_issues', { query: '1', status: 'open' })).field, 'query', 'a saved query with filters Redmine would ignore');
  });

  test('custom fields by name as well as id, read and written (names from the issue itself); an unknown one is refused on its field before any change', async () => {
    const created = await ok(alice, 'create_issue', { project: 'shared-work', type: 'Bug', summary: 'For a customer', fields: { due_date: '2027-01-31' } });
    const named = await ok(alice, 'get_issue', { key: created.key, fields: ['Customer', 'due_date'] });
    assert.deepEqual(named.fields, { Customer: null, due_date: '2027-01-31' });
    await ok(alice, 'update_issue', { key: created.key, fields: { customer: 'ACME Corp' } });
    assert.equal((await ok(bob, 'get_issue', { key: created.key, fields: ['Customer'] })).fields.Customer, 'ACME Corp');
    const byName = await refused(alice, 'create_issue', { project: 'shared-work', type: 'Bug', summary: 'x', fields: { Customer: 'y' } });
    assert.deepEqual([byName.code, byName.field], ['invalid_input', 'fields.Customer']);
    assert.match(byName.message, /cf_<id>/);
    const unknown = await refused(alice, 'update_issue', { key: created.key, summary: 'changed?', fields: { 'Story Points': 3 } });
    assert.deepEqual([unknown.code, unknown.field], ['invalid_input', 'fields.Story Points']);
    assert.match(unknown.message, /Customer \(cf_\d+\)/);
    const id = /Customer \((cf_\d+)\)/.exec(unknown.message)![1]!;
    await ok(alice, 'transition_issue', { key: created.key, name: 'In Progress', fields: { [id]: 'Globex' } });
    assert.deepEqual((await ok(alice, 'get_issue', { key: created.key, fields: [id, 'customer'] })).fields, { [id]: 'Globex', customer: 'Globex' });
    assert.equal((await ok(alice, 'get_issue', { key: created.key })).summary, 'For a customer', 'the refused change changed nothing');
  });

  // Last: it takes bob's key away.
  test('a key Redmine no longer knows is answered as anonymous (200, empty); Mandate reports the connection refused, never an empty result', async () => {
    assert.ok((await ok(bob, 'list_projects')).items.length > 0);
    rotateApiKey('bob');
    const search = await call(bob, 'search_issues', {});
    assert.equal(!search.ok && search.error.code, 'connection_invalid', JSON.stringify(search));
    assert.equal((await ok(bob, 'list_pm_connections')).items[0].status, 'invalid');
    assert.equal((await refused(bob, 'list_projects')).code, 'connection_invalid');
  });
});
