import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { makeUser } from './helpers/fixtures.ts';
import { toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { redmineUnavailable, startRedmine, type RedmineWorld } from './helpers/redmine.ts';

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

  const { ok, refused } = toolCaller(() => rt, responses);

  before(async () => {
    redmine = await startRedmine();
    recordSecret(redmine.keys.alice);
    recordSecret(redmine.keys.bob);
    rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
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
});
