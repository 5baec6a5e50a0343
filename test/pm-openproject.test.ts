import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { makeUser } from './helpers/fixtures.ts';
import { toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeOpenProject, type FakeOpUser } from './helpers/fake-openproject.ts';

// The PM tools on OpenProject (API v3, HAL) against a fake that follows its documentation and
// records every request that breaks the documented contract (filters, paging, _links, formatted
// texts, lockVersion); any such request fails the test that made it.

const aliceOp: FakeOpUser = { id: 3, login: 'alice', name: 'Alice Doe', apiKey: recordSecret('op-alice-key-0a1b2c3d4e5f60718293'), projects: ['alpha', 'common'] };
const bobOp: FakeOpUser = { id: 4, login: 'bob', name: 'Bob Roe', apiKey: recordSecret('op-bob-key-9f8e7d6c5b4a30291807'), projects: ['beta', 'common'] };

let fake: FakeOpenProject;
let rt: TestRuntime;
let alice: User;
let bob: User;
const responses: string[] = [];
const { call, ok, refused } = toolCaller(() => rt, responses);

before(async () => {
  fake = await new FakeOpenProject([aliceOp, bobOp]).start();
  fake.addProject('alpha', 'Alpha');
  fake.addProject('beta', 'Beta');
  fake.addProject('common', 'Common');
  for (let i = 0; i < 5; i++) fake.addWorkPackage('alpha', aliceOp, { subject: `alpha task ${i}` });
  fake.addWorkPackage('beta', bobOp, { subject: 'bob only' });
  rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_PM_ALLOW_DELETE: 'true' } });
  alice = await makeUser(rt, { roles: ['developer'] });
  bob = await makeUser(rt, { roles: ['developer'] });
  await ok(alice, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: aliceOp.apiKey });
  await ok(bob, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: bobOp.apiKey });
});

afterEach(() => {
  const found = fake.takeViolations();
  assert.deepEqual(found, [], `requests that break OpenProject's documented API:\n${found.join('\n')}`);
});

after(async () => {
  const text = responses.join('\n');
  keepArtifact('responses', text);
  assert.ok(!text.includes(aliceOp.apiKey) && !text.includes(bobOp.apiKey), 'an API key appears in a tool result');
  await rt.close();
  await fake.stop();
});

test('add: the key is checked with /users/me (Basic apikey:KEY) before anything is stored; a wrong key is a 400 on api_key', async () => {
  const listed = await ok(alice, 'list_pm_connections');
  assert.deepEqual(listed.items.map((c: any) => [c.provider, c.auth, c.status, c.account]), [['openproject', 'api_key', 'connected', { id: '3', name: 'Alice Doe' }]]);
  const me = fake.requests.find((r) => r.path === '/api/v3/users/me' && r.user === 'alice');
  assert.ok(me, 'who am I was asked with her key');
  const carol = await makeUser(rt, { roles: ['developer'] });
  const wrong = await refused(carol, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: recordSecret('op-wrong-key-000000000000') });
  assert.equal(wrong.code, 'invalid_input');
  assert.equal(wrong.field, 'api_key');
  assert.equal((await ok(carol, 'list_pm_connections')).items.length, 0);
});

test('isolation: bob cannot read, change or comment on alice\'s work packages; each sees only their projects', async () => {
  const created = await ok(alice, 'create_issue', { project: 'alpha', type: 'Bug', summary: 'Private bug', description: 'Steps:\n\n- open **it**\n- see `error`' });
  const got = await ok(alice, 'get_issue', { key: created.key });
  assert.equal(got.description, 'Steps:\n\n- open **it**\n- see `error`', 'Markdown goes in and comes out unchanged');
  assert.equal(got.type, 'Bug');
  assert.equal(got.project, 'Alpha');
  assert.equal(got.reporter.name, 'Alice Doe');
  assert.equal(got.url, `${fake.url}/work_packages/${created.key}`);
  assert.equal((await refused(bob, 'get_issue', { key: created.key })).code, 'not_found');
  assert.equal((await refused(bob, 'update_issue', { key: created.key, summary: 'bob was here' })).code, 'not_found');
  assert.equal((await refused(bob, 'add_comment', { key: created.key, body: 'hi' })).code, 'not_found');
  assert.equal((await refused(bob, 'search_issues', { project: 'alpha' })).code, 'not_found');
  assert.equal((await ok(alice, 'get_issue', { key: created.key })).summary, 'Private bug', 'unchanged by bob');
  assert.deepEqual((await ok(bob, 'list_projects')).items.map((p: any) => p.key), ['beta', 'common']);
  assert.ok(!(await ok(bob, 'search_issues', { text: 'Private bug' })).items.length);
});

test('search: filters, native filter JSON as query, fields, and pages across cursors', async () => {
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await ok(alice, 'search_issues', { project: 'alpha', text: 'alpha task', limit: 2, ...(cursor ? { cursor } : {}) });
    assert.ok(page.items.length <= 2);
    seen.push(...page.items.map((i: any) => i.summary));
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  assert.deepEqual([...seen].sort(), ['alpha task 0', 'alpha task 1', 'alpha task 2', 'alpha task 3', 'alpha task 4']);
  const paged = fake.requests.filter((r) => r.path === '/api/v3/work_packages' && r.query.get('pageSize') === '2').map((r) => r.query.get('offset'));
  assert.deepEqual(paged.slice(-3), ['1', '2', '3'], 'OpenProject pages by page number');

  const filters = JSON.parse(fake.requests.filter((r) => r.path === '/api/v3/work_packages').at(-1)!.query.get('filters')!);
  assert.deepEqual(filters, [{ project: { operator: '=', values: ['10'] } }, { subject: { operator: '~', values: ['alpha task'] } }]);

  const native = await ok(alice, 'search_issues', { query: JSON.stringify([{ status: { operator: 'o', values: [] } }]) });
  assert.ok(native.items.length >= 5);
  const bad = await refused(alice, 'search_issues', { query: 'project = ALPHA' });
  assert.equal(bad.field, 'query');
  assert.match(bad.message, /filter JSON/);
  const since = await ok(alice, 'search_issues', { updated_since: '2026-11-12', status: 'New', fields: ['lockVersion'] });
  assert.ok(since.items.every((i: any) => i.updated >= '2026-11-12' && i.status === 'New'));
  assert.ok(since.items.every((i: any) => typeof i.fields.lockVersion === 'number'), 'asked-for fields come along');
  const badStatus = await refused(alice, 'search_issues', { status: 'Nonsense' });
  assert.equal(badStatus.field, 'status');
  assert.match(badStatus.message, /known: New, In progress, Closed/);
});

test('workflow on a shared work package: transitions, comments, assignment, time, relations, parent, history', async () => {
  const wp = await ok(alice, 'create_issue', { project: 'common', type: 'Task', summary: 'Shared task', priority: 'High' });
  const child = await ok(bob, 'create_issue', { project: 'common', type: 'Task', summary: 'Child task' });
  assert.equal((await ok(bob, 'get_issue', { key: wp.key })).priority, 'High');
  const transitions = (await ok(alice, 'list_transitions', { key: wp.key })).items.map((t: any) => t.name);
  assert.deepEqual(transitions, ['In progress', 'Closed']);
  await ok(alice, 'transition_issue', { key: wp.key, name: 'In progress', comment: 'on it' });
  const after = await ok(bob, 'get_issue', { key: wp.key, include: ['comments', 'history', 'transitions'] });
  assert.equal(after.status, 'In progress');
  assert.deepEqual(after.comments.map((c: any) => c.body), ['on it']);
  assert.deepEqual(after.history[0].changes, [{ field: 'Status', from: 'New', to: 'In progress' }]);
  assert.deepEqual(after.transitions.map((t: any) => t.name), ['New', 'Closed']);

  const comment = await ok(bob, 'add_comment', { key: wp.key, body: 'looks *good*' });
  assert.equal(comment.body, 'looks *good*');
  const edited = await ok(bob, 'edit_comment', { key: wp.key, comment_id: comment.id, body: 'looks great' });
  assert.equal(edited.body, 'looks great');
  assert.equal((await refused(alice, 'edit_comment', { key: wp.key, comment_id: comment.id, body: 'mine now' })).code, 'forbidden');
  assert.deepEqual((await ok(alice, 'list_comments', { key: wp.key })).items.map((c: any) => c.body), ['on it', 'looks great']);

  await ok(alice, 'assign_issue', { key: wp.key, assignee: 'Bob Roe' });
  assert.equal((await ok(alice, 'get_issue', { key: wp.key })).assignee.name, 'Bob Roe');
  await ok(alice, 'assign_issue', { key: wp.key, assignee: 'me' });
  assert.equal((await ok(alice, 'search_issues', { assignee: 'me', project: 'common' })).items[0].key, wp.key);
  await ok(alice, 'assign_issue', { key: wp.key, assignee: null });
  assert.equal((await ok(alice, 'get_issue', { key: wp.key })).assignee, null);
  const stranger = await refused(alice, 'assign_issue', { key: wp.key, assignee: 'Nobody Here' });
  assert.equal(stranger.field, 'assignee');

  await ok(alice, 'add_worklog', { key: wp.key, time_spent: '1h 30m', comment: 'pairing', started: '2026-11-20' });
  const sent = fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/v3/time_entries').at(-1)!.body as any;
  assert.equal(sent.hours, 'PT1H30M');
  const logs = await ok(alice, 'list_worklogs', { key: wp.key });
  assert.deepEqual(logs.items.map((l: any) => [l.seconds, l.comment, l.started]), [[5400, 'pairing', '2026-11-20']]);

  await ok(alice, 'link_issues', { type: 'blocks', from: wp.key, to: child.key });
  assert.deepEqual((await ok(alice, 'get_issue', { key: wp.key, include: ['links'] })).links.map((l: any) => [l.relation, l.issue]), [['blocks', child.key]]);
  assert.deepEqual((await ok(bob, 'get_issue', { key: child.key, include: ['links'] })).links.map((l: any) => [l.relation, l.issue]), [['blocked by', wp.key]]);
  await ok(bob, 'set_parent', { key: child.key, parent: wp.key });
  assert.equal((await ok(bob, 'get_issue', { key: child.key })).parent, wp.key);
  assert.deepEqual((await ok(alice, 'get_issue', { key: wp.key, include: ['subtasks'] })).subtasks.map((s: any) => s.key), [child.key]);
  await ok(bob, 'set_parent', { key: child.key, parent: null });
  assert.equal((await ok(bob, 'get_issue', { key: child.key })).parent, null);
});

test('update sends the current lockVersion; a concurrent change is a conflict, not a lost update', async () => {
  const wp = await ok(alice, 'create_issue', { project: 'alpha', type: 'Task', summary: 'Racy' });
  await ok(alice, 'update_issue', { key: wp.key, summary: 'Racy, renamed', description: 'New *text*' });
  const patch = fake.requests.filter((r) => r.method === 'PATCH').at(-1)!.body as any;
  assert.equal(patch.lockVersion, 0);
  assert.deepEqual(patch.description, { format: 'markdown', raw: 'New *text*' });
  // Someone else saves between our read and our write.
  fake.onNextRequest = () => {
    fake.onNextRequest = () => {
      fake.workPackages.get(Number(wp.key))!.lockVersion++;
    };
  };
  const conflict = await refused(alice, 'update_issue', { key: wp.key, summary: 'Mine' });
  assert.equal(conflict.code, 'conflict');
  assert.match(conflict.message, /changed by someone else/);
  assert.equal((await ok(alice, 'get_issue', { key: wp.key })).summary, 'Racy, renamed');
});

test('validation errors name the field; delete works where enabled', async () => {
  const outsider = await refused(alice, 'create_issue', { project: 'alpha', type: 'Task', summary: 'For bob', assignee: String(bobOp.id) });
  assert.equal(outsider.code, 'invalid_input');
  assert.equal(outsider.field, 'fields.assignee');
  assert.match(outsider.message, /Assignee is not a member of this project/);
  assert.ok(![...fake.workPackages.values()].some((wp) => wp.subject === 'For bob'), 'nothing was created');
  const gone = await ok(alice, 'create_issue', { project: 'alpha', type: 'Task', summary: 'Short-lived' });
  await ok(alice, 'delete_issue', { key: gone.key });
  assert.equal((await refused(alice, 'get_issue', { key: gone.key })).code, 'not_found');
  assert.equal((await refused(alice, 'get_issue', { key: 'ALPHA-1' })).field, 'key');
});

test('metadata, and clear errors for what OpenProject does not have', async () => {
  assert.deepEqual((await ok(alice, 'list_statuses')).items.map((s: any) => s.name), ['New', 'In progress', 'Closed']);
  assert.deepEqual((await ok(alice, 'list_priorities')).items.map((p: any) => p.name), ['Normal', 'High']);
  assert.deepEqual((await ok(alice, 'list_issue_types', { project: 'alpha' })).items.map((t: any) => t.name), ['Task', 'Bug']);
  const project = await ok(alice, 'get_project', { project: 'alpha' });
  assert.deepEqual([project.key, project.name, project.url], ['alpha', 'Alpha', `${fake.url}/projects/alpha`]);
  const projects = await ok(alice, 'list_projects', { query: 'comm' });
  assert.deepEqual(projects.items.map((p: any) => p.key), ['common']);
  const fields = (await ok(alice, 'get_create_fields', { project: 'alpha', issue_type: 'Bug' })).items;
  assert.deepEqual(fields.map((f: any) => [f.id, f.required, f.custom]), [['subject', true, false], ['description', false, false], ['priority', false, false], ['customField3', false, true], ['customField4', false, true], ['customField5', false, true], ['startDate', false, false]]);
  assert.deepEqual(fields.find((f: any) => f.id === 'priority').allowed_values, ['Normal', 'High']);
  assert.ok((await ok(alice, 'search_fields', { query: 'date' })).items.some((f: any) => f.id === 'dueDate'));
  assert.deepEqual((await ok(alice, 'search_users', { query: 'bob' })).items.map((u: any) => u.name), ['Bob Roe']);
  assert.ok((await ok(alice, 'list_link_types')).items.some((t: any) => t.id === 'precedes'));
  for (const [tool, input] of [['list_boards', {}], ['list_sprints', { board: '1' }], ['move_to_backlog', { issues: ['100'] }], ['add_remote_link', { key: '100', url: 'https://example.test', title: 'x' }]] as const) {
    const error = await refused(alice, tool, input);
    assert.equal(error.code, 'invalid_input', tool);
    assert.match(error.message, /not supported for OpenProject/, tool);
  }
});

test('a key OpenProject stops accepting (401) marks the connection invalid; no request after that', async () => {
  const dave = await makeUser(rt, { roles: ['developer'] });
  const daveOp: FakeOpUser = { id: 9, login: 'dave', name: 'Dave', apiKey: recordSecret('op-dave-key-1234567890abcdef'), projects: ['alpha'] };
  fake.users.push(daveOp);
  await ok(dave, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: daveOp.apiKey });
  daveOp.apiKey = 'rotated-by-an-admin';
  const first = await refused(dave, 'list_projects');
  assert.equal(first.code, 'connection_invalid');
  assert.ok(!first.message.includes('op-dave-key'));
  const count = fake.requests.length;
  assert.equal((await refused(dave, 'list_projects')).code, 'connection_invalid');
  assert.equal(fake.requests.length, count, 'an invalid connection makes no request');
  assert.equal((await ok(dave, 'list_pm_connections')).items[0].status, 'invalid');
  const outcome = await call(dave, 'search_issues', {});
  assert.equal(outcome.ok, false);
});

test('a key OpenProject no longer knows, answered as the anonymous user (an empty list), is a refused connection, never an empty result', async () => {
  const carolOp: FakeOpUser = { id: 9, login: 'carol', name: 'Carol Poe', apiKey: recordSecret('op-carol-key-5a4b3c2d1e0f99887766'), projects: ['alpha'] };
  fake.users.push(carolOp);
  const carol = await makeUser(rt, { roles: ['developer'] });
  await ok(carol, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: carolOp.apiKey });
  assert.ok((await ok(carol, 'search_issues', { project: 'alpha' })).items.length > 0);
  carolOp.apiKey = 'rotated-by-an-administrator';
  fake.anonymousAccess = true;
  try {
    for (const [name, input] of [['search_issues', {}], ['list_projects', {}], ['list_worklogs', { key: '100' }]] as const) {
      const result = await call(carol, name, input);
      assert.equal(!result.ok && result.error.code, 'connection_invalid', `${name}: ${JSON.stringify(result)}`);
    }
    assert.equal((await ok(carol, 'list_pm_connections')).items[0].status, 'invalid');
  } finally {
    fake.anonymousAccess = false;
  }
});

test('custom fields by name as well as by property, read and written; list fields by one of their allowed values; unknown, read-only or disallowed values refused on their field with nothing sent', async () => {
  const created = await ok(alice, 'create_issue', { project: 'alpha', type: 'Task', summary: 'For a customer', fields: { Customer: 'ACME Corp', Severity: 'critical', 'start date': '2026-12-01' } });
  const got = await ok(alice, 'get_issue', { key: created.key, fields: ['Customer', 'severity', 'customField3', 'Start date'] });
  assert.deepEqual(got.fields, { Customer: 'ACME Corp', severity: 'Critical', customField3: 'ACME Corp', 'Start date': '2026-12-01' });
  const schema = (await ok(alice, 'get_create_fields', { project: 'alpha', issue_type: 'Task' })).items;
  assert.deepEqual(schema.find((f: any) => f.id === 'customField4').allowed_values, ['Low', 'Critical']);
  await ok(alice, 'update_issue', { key: created.key, fields: { severity: 'Low', customField3: 'Globex' } });
  assert.deepEqual((await ok(alice, 'get_issue', { key: created.key, fields: ['Severity', 'Customer'] })).fields, { Severity: 'Low', Customer: 'Globex' });
  const version = fake.workPackages.get(Number(created.key))!.lockVersion;
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ 'Story Points': 3 }, 'fields.Story Points', /no field of this work package's form .*Customer \(customField3\)/],
    [{ Severity: 'Blocker' }, 'fields.Severity', /must be one of Low, Critical/],
    [{ 'Created on': '2020-01-01' }, 'fields.Created on', /cannot be changed/],
    [{ Reviewer: 'Bob Roe' }, 'fields.Reviewer', /User\) cannot be set through fields here/],
    [{ Severity: { toString: 1 } }, 'fields.Severity', /must be one of its allowed values/],
  ];
  for (const [fields, field, message] of cases) {
    const refusedChange = await refused(alice, 'update_issue', { key: created.key, summary: 'changed?', fields });
    assert.deepEqual([refusedChange.code, refusedChange.field], ['invalid_input', field]);
    assert.match(refusedChange.message, message);
  }
  assert.equal(fake.workPackages.get(Number(created.key))!.lockVersion, version, 'nothing was changed');
  await ok(alice, 'transition_issue', { key: created.key, name: 'In progress', fields: { Severity: 'Critical' } });
  assert.equal((await ok(alice, 'get_issue', { key: created.key, fields: ['Severity'] })).fields.Severity, 'Critical');
  assert.equal((await ok(alice, 'get_issue', { key: created.key, fields: ['no such field', 'constructor'] })).fields['no such field'], null);
  for (const name of ['_links', '_embedded']) {
    assert.equal((await refused(alice, 'get_issue', { key: created.key, fields: [name] })).field, 'fields', name);
    assert.equal((await refused(alice, 'search_issues', { fields: [name] })).field, 'fields', name);
  }
  const forms = fake.requests.filter((r) => /\/form$/.test(r.path) && r.method === 'POST').length;
  assert.ok(forms >= 3, 'allowed values come from forms, which hold them');
});
