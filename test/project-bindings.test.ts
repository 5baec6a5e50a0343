import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { authenticateToken } from '../lib/identity/authenticate.ts';
import { assign, makeUser } from './helpers/fixtures.ts';
import { everySearchPage, toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser, type Flavor } from './helpers/fake-jira.ts';
import { FakeOpenProject, type FakeOpUser } from './helpers/fake-openproject.ts';
import { specsMissing } from './helpers/openapi.ts';

// A Mandate project bound to Jira projects: a pm grant held only in that project reaches only
// them, searches are confined in the JQL itself, and a refused call never reaches the tracker.

const missing = specsMissing();

for (const flavor of ['cloud', 'dc'] as Flavor[]) {
  describe(`project bindings on Jira ${flavor === 'cloud' ? 'Cloud' : 'Data Center'}`, { skip: missing ?? false }, () => {
    const provider = flavor === 'cloud' ? 'jira_cloud' : 'jira_dc';
    const worker: FakeUser = { accountId: '5b10a2844c20165700ede4aa', name: 'worker', displayName: 'Worker', emailAddress: 'worker@corp.test', secret: recordSecret(`bind-${flavor}-${Math.random().toString(36).slice(2)}`), projects: ['ACME', 'OTHER', 'UNB'] };
    const credentials = flavor === 'cloud' ? { email: worker.emailAddress, api_token: worker.secret } : { token: worker.secret };
    let fake: FakeJira;
    let rt: TestRuntime;
    let admin: User;
    let scoped: User;
    let reader: User;
    let global: User;
    const responses: string[] = [];
    const { call, ok, refused } = toolCaller(() => rt, responses);
    const requestsFor = (key: string, from: number) => fake.requests.slice(from).filter((r) => r.path.includes(key));
    const searchPath = () => (flavor === 'cloud' ? `${fake.api}/search/jql` : `${fake.api}/search`);

    before(async () => {
      fake = await new FakeJira(flavor, [worker]).start();
      rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
      admin = await makeUser(rt, { roles: ['admin'] });
      for (const [key, name] of [['ACME', 'Acme'], ['OTHERP', 'Other work']]) await ok(admin, 'create_mandate_project', { key, name });
      await ok(admin, 'bind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'acme' });
      await ok(admin, 'bind_tracker_project', { project: 'OTHERP', tracker: 'jira', tracker_project: 'OTHER' });
      scoped = await makeUser(rt, { roles: [['developer', 'ACME']] });
      reader = await makeUser(rt, { roles: [['viewer', 'ACME']] });
      global = await makeUser(rt, { roles: ['developer'] });
      for (const user of [scoped, reader, global]) await ok(user, 'add_pm_connection', { provider, base_url: fake.url, ...credentials });
      for (let i = 0; i < 5; i++) fake.addIssue('ACME', { summary: `acme ${i}` });
      for (let i = 0; i < 3; i++) fake.addIssue('OTHER', { summary: `other ${i}` });
      fake.addIssue('UNB', { summary: 'unbound' });
    });
    afterEach(() => assert.deepEqual(fake.takeMismatches(), []));
    after(async () => {
      keepArtifact('responses', responses.join('\n'));
      assert.ok(!responses.join('\n').includes(worker.secret));
      await fake?.stop();
      await rt?.close();
    });

    test('bindings: one Mandate project per tracker project, projects:write to change them, shown on the project', async () => {
      const shown = await ok(admin, 'get_mandate_project', { project: 'ACME' });
      assert.deepEqual(shown.bindings.map((b: { tracker: string; tracker_project: string }) => [b.tracker, b.tracker_project]), [['jira', 'ACME']]);
      const taken = await refused(admin, 'bind_tracker_project', { project: 'OTHERP', tracker: 'jira', tracker_project: 'ACME' });
      assert.equal(taken.code, 'conflict');
      assert.equal(taken.field, 'tracker_project');
      assert.match(taken.message, /bound to project ACME/);
      assert.equal((await ok(admin, 'bind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'ACME' })).bindings.length, 1, 'idempotent');
      assert.match((await refused(scoped, 'bind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'UNB' })).message, /projects:write/);
      assert.equal((await refused(admin, 'bind_tracker_project', { project: 'ACME', tracker: 'youtrack', tracker_project: 'x' })).field, 'tracker');
      for (const [tracker, trackerProject] of [['jira', 'acme-web'], ['redmine', '1234'], ['redmine', 'a b'], ['openproject', 'acme'], ['openproject', '0'], ['jira', 'A\u0000B']]) {
        const bad = await refused(admin, 'bind_tracker_project', { project: 'ACME', tracker, tracker_project: trackerProject });
        assert.equal(bad.field, 'tracker_project', `${tracker} ${trackerProject}`);
      }
    });

    test('pm:write held only in ACME transitions ACME-1 and is refused on OTHER-1 (naming the project) and UNB-9; nothing reaches the tracker for them', async () => {
      const done = await ok(scoped, 'transition_issue', { key: 'ACME-1', name: 'Done' });
      assert.ok(done);
      const from = fake.requests.length;
      const other = await refused(scoped, 'transition_issue', { key: 'OTHER-6', name: 'Done' });
      assert.equal(other.code, 'forbidden');
      assert.match(other.message, /transition_issue needs pm:write in project OTHERP/);
      const unbound = await refused(scoped, 'add_comment', { key: 'UNB-9', body: 'hi' });
      assert.match(unbound.message, /needs pm:write globally \(tracker project UNB is bound to no project\)/);
      const linked = await refused(scoped, 'link_issues', { type: 'Blocks', from: 'ACME-1', to: 'OTHER-6' });
      assert.match(linked.message, /in project OTHERP/);
      const file = await refused(scoped, 'add_attachment', { key: 'OTHER-6', filename: 'x.txt', content_base64: 'eA==' });
      assert.match(file.message, /add_attachment needs pm:write in project OTHERP/);
      assert.match((await refused(reader, 'get_attachment', { key: 'OTHER-6', attachment_id: '1' })).message, /get_attachment needs pm:read in project OTHERP/);
      assert.equal(fake.requests.length, from, 'no request left Mandate');
      assert.deepEqual(requestsFor('OTHER-6', 0), []);
    });

    test('fields cannot carry what has an input of its own (the guard checks parent and project there); sprints need a global grant', async () => {
      const from = fake.requests.length;
      const parent = await refused(scoped, 'update_issue', { key: 'ACME-1', fields: { parent: { key: 'UNB-9' } } });
      assert.equal(parent.code, 'invalid_input');
      assert.equal(parent.field, 'fields.parent');
      const project = await refused(scoped, 'create_issue', { project: 'ACME', type: 'Task', summary: 'x', fields: { project: { key: 'OTHER' } } });
      assert.equal(project.field, 'fields.project');
      const transition = await refused(scoped, 'transition_issue', { key: 'ACME-1', name: 'Done', fields: { Parent: { key: 'UNB-9' } } });
      assert.equal(transition.field, 'fields.Parent');
      assert.match((await refused(scoped, 'move_to_sprint', { sprint: '7', issues: ['ACME-1'] })).message, /needs pm:write globally/);
      assert.equal(fake.requests.length, from);
    });

    test("an agent's standing is its spawner's alone: no role can be assigned to it, and a grant from elsewhere does not carry the spawner's connection", async () => {
      const started = await ok(scoped, 'start_agent_session', { role: 'agent' });
      recordSecret(started.token);
      const role = await refused(admin, 'assign_role', { user_id: started.agent.id, role: 'viewer', project_key: 'OTHERP' });
      assert.equal(role.code, 'forbidden');
      assert.equal(role.field, 'user_id');
      // Written anyway (not through an operation): the spawner's connection still reaches ACME only.
      await assign(rt, { id: started.agent.id } as User, 'viewer', 'OTHERP');
      const agent = await authenticateToken(rt.db.orm.em.fork(), started.token);
      const from = fake.requests.length;
      const other = await rt.runner.run(OPERATIONS.get_issue!, agent, { key: 'OTHER-7' });
      assert.equal(!other.ok && other.error.code, 'forbidden');
      assert.match(!other.ok ? other.error.message : '', /delegated by the owner of the connection/);
      assert.equal(fake.requests.length, from);
      assert.ok((await rt.runner.run(OPERATIONS.get_issue!, agent, { key: 'ACME-3' })).ok);
      await ok(scoped, 'end_agent_session', { agent_session_id: started.agent_session.id });
    });

    test('an issue Jira answers from another project (moved, still found by its old key) is refused to a confined caller', async () => {
      const moved = structuredClone(fake.issues.get('UNB-9'));
      fake.script.push({ match: `GET ${fake.api}/issue/ACME-4`, status: 200, body: moved });
      const result = await refused(reader, 'get_issue', { key: 'ACME-4' });
      assert.equal(result.code, 'forbidden');
      assert.match(result.message, /tracker project UNB/);
      assert.ok(!JSON.stringify(result).includes('unbound'), 'nothing of the issue is shown');
    });

    test('a moved issue reached by its old key: tools that do not check their answer look the issue up first and refuse before acting', async () => {
      const moved = structuredClone(fake.issues.get('UNB-9'));
      const attempts: [User, string, Record<string, unknown>][] = [
        [scoped, 'add_comment', { key: 'ACME-4', body: 'to the moved issue' }],
        [reader, 'list_attachments', { key: 'ACME-4' }],
        [reader, 'list_comments', { key: 'ACME-4' }],
        [scoped, 'add_attachment', { key: 'ACME-4', filename: 'a.txt', content_base64: 'eA==' }],
      ];
      for (const [user, name, input] of attempts) {
        fake.script.push({ match: `GET ${fake.api}/issue/ACME-4`, status: 200, body: moved });
        const from = fake.requests.length;
        const result = await refused(user, name, input);
        assert.equal(result.code, 'forbidden', name);
        assert.match(result.message, /issue ACME-4 is in tracker project UNB now/, name);
        assert.deepEqual(fake.requests.slice(from).map((r) => `${r.method} ${r.path}`), [`GET ${fake.api}/issue/ACME-4`], `${name}: only the look-up left Mandate`);
      }
      assert.ok((await ok(scoped, 'add_comment', { key: 'ACME-4', body: 'not moved' })).id, 'the same call on an issue still in ACME');
    });

    test('a confined caller sees sub-tasks in projects it may read only, and cannot ask for raw fields carrying other issues', async () => {
      const parent = fake.issues.get('ACME-2')!;
      parent.fields.subtasks = [
        { key: 'ACME-3', fields: { summary: 'acme sub-task', status: { name: 'To Do' } } },
        { key: 'OTHER-7', fields: { summary: 'other secret sub-task', status: { name: 'To Do' } } },
      ];
      try {
        const got = await ok(reader, 'get_issue', { key: 'ACME-2', include: ['subtasks'] });
        assert.deepEqual(got.subtasks.map((s: { key: string }) => s.key), ['ACME-3']);
        assert.ok(!JSON.stringify(got).includes('other secret'));
        // Raw fields carrying other issues, by id or by name, are refused (include gives them, filtered).
        for (const name of ['subtasks', 'issuelinks', 'Sub-tasks', 'linked issues']) {
          assert.equal((await refused(reader, 'get_issue', { key: 'ACME-2', fields: [name] })).field, 'fields', name);
          assert.equal((await refused(reader, 'search_issues', { fields: [name] })).field, 'fields', name);
        }
        assert.ok(!JSON.stringify(await ok(reader, 'get_issue', { key: 'ACME-2', fields: ['Parent'] })).includes('other secret'), 'the parent is its key only');
        assert.equal((await ok(global, 'get_issue', { key: 'ACME-2', include: ['subtasks'] })).subtasks.length, 2, 'a global grant sees them all');
      } finally {
        parent.fields.subtasks = [];
      }
    });

    test('a confined caller cannot set what reaches other issues or sprints through fields (sprint, by id or name); a global grant can', async () => {
      const from = fake.requests.filter((r) => r.method === 'PUT').length;
      for (const fields of [{ Sprint: 7 }, { customfield_10020: 7 }]) {
        const sprint = await refused(scoped, 'update_issue', { key: 'ACME-1', fields });
        assert.deepEqual([sprint.code, sprint.field], ['forbidden', `fields.${Object.keys(fields)[0]}`]);
        assert.match(sprint.message, /reaches other issues or a sprint/);
      }
      assert.equal((await refused(scoped, 'transition_issue', { key: 'ACME-1', name: 'Done', fields: { Sprint: 7 } })).code, 'forbidden');
      assert.equal(fake.requests.filter((r) => r.method === 'PUT').length, from, 'nothing was changed');
      assert.ok(await ok(global, 'update_issue', { key: 'ACME-1', fields: { Sprint: 7 } }));
    });

    test('pm:read only in ACME reads ACME-1, and writing there needs pm:write in ACME', async () => {
      assert.equal((await ok(reader, 'get_issue', { key: 'ACME-2' })).key, 'ACME-2');
      const write = await refused(reader, 'add_comment', { key: 'ACME-2', body: 'hi' });
      assert.equal(write.code, 'forbidden');
      assert.match(write.message, /needs pm:write/);
    });

    test('search_issues is confined in the JQL to the bound projects the caller may read, across pages; a query that would escape is refused', async () => {
      const { keys, pages } = await everySearchPage(ok, scoped, { limit: 2 });
      assert.ok(pages >= 3, 'paged');
      assert.deepEqual(keys, ['ACME-1', 'ACME-2', 'ACME-3', 'ACME-4', 'ACME-5']);
      const sent = fake.calls('POST', searchPath()).at(-1)!.body as { jql: string };
      assert.match(sent.jql, /^project in \("ACME"\)/);
      const asked = await ok(scoped, 'search_issues', { query: 'project = "OTHER"' });
      assert.deepEqual(asked.items, [], 'a query naming another project finds nothing');
      for (const query of [
        'project = ACME) OR (project = OTHER',
        'summary ~ "x" OR project = OTHER ORDER BY (key)',
        'summary ~ "order by" OR project = OTHER',
        // Jira reads a backslash outside a string as escaping the next character of a word.
        'summary ~ a\\" )) OR project = UNB OR ((summary ~ "\\""',
      ]) {
        const escape = await refused(scoped, 'search_issues', { query });
        assert.equal(escape.code, 'invalid_input', query);
        assert.equal(escape.field, 'query');
      }
      // Should Jira read the query otherwise, issues outside the confinement refuse the call.
      fake.script.push({ match: `POST ${searchPath()}`, status: 200, body: flavor === 'cloud' ? { issues: [fake.issues.get('OTHER-6')], isLast: true } : { startAt: 0, maxResults: 25, total: 1, issues: [fake.issues.get('OTHER-6')] } });
      const leaked = await refused(scoped, 'search_issues', {});
      assert.equal(leaked.code, 'forbidden');
      assert.ok(!JSON.stringify(leaked).includes('other 0'), 'nothing of the issue is shown');
      // A global grant is not confined.
      const all = await ok(global, 'search_issues', { limit: 50 });
      assert.equal(all.items.length, 9);
      assert.doesNotMatch((fake.calls('POST', searchPath()).at(-1)!.body as { jql: string }).jql, /project in/);
    });

    test('tracker-wide metadata needs the grant anywhere; listing every project needs it globally', async () => {
      assert.ok((await ok(scoped, 'list_priorities')).items.length > 0);
      assert.match((await refused(scoped, 'list_projects')).message, /list_projects needs pm:read globally/);
      assert.ok((await ok(global, 'list_projects')).items.length > 0);
      const nobody = await makeUser(rt);
      assert.match((await refused(nobody, 'list_priorities')).message, /needs pm:read/);
    });

    test("an agent started by the ACME developer gets ACME-scoped delegations: its calls reach ACME only, through the spawner's connection", async () => {
      const started = await ok(scoped, 'start_agent_session', { role: 'agent' });
      recordSecret(started.token);
      const agent = await authenticateToken(rt.db.orm.em.fork(), started.token);
      const got = await rt.runner.run(OPERATIONS.get_issue!, agent, { key: 'ACME-3' });
      assert.ok(got.ok, JSON.stringify(!got.ok && got.error));
      const from = fake.requests.length;
      const other = await rt.runner.run(OPERATIONS.get_issue!, agent, { key: 'OTHER-7' });
      assert.equal(!other.ok && other.error.code, 'forbidden');
      assert.equal(fake.requests.length, from);
      await ok(scoped, 'end_agent_session', { agent_session_id: started.agent_session.id });
    });

    test('unbinding ACME takes it out of reach of the ACME-only grant; a global grant reaches everything all along', async () => {
      assert.equal((await ok(global, 'get_issue', { key: 'OTHER-6' })).key, 'OTHER-6');
      assert.equal((await ok(global, 'get_issue', { key: 'UNB-9' })).key, 'UNB-9');
      await ok(admin, 'unbind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'ACME' });
      try {
        const after = await call(scoped, 'get_issue', { key: 'ACME-1' });
        assert.equal(!after.ok && after.error.code, 'forbidden');
        assert.match(!after.ok ? after.error.message : '', /bound to no project/);
        assert.equal((await refused(admin, 'unbind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'ACME' })).code, 'not_found');
      } finally {
        await ok(admin, 'bind_tracker_project', { project: 'ACME', tracker: 'jira', tracker_project: 'ACME' });
      }
    });
  });
}

// OpenProject names a project by id in bindings; a work package number does not say its project,
// so for a confined caller the guard reads the work package first and refuses before any change.
describe('project bindings on OpenProject', () => {
  const worker: FakeOpUser = { id: 7, login: 'worker', name: 'Worker', apiKey: recordSecret(`op-bind-${Math.random().toString(36).slice(2)}`), projects: ['alpha', 'beta', 'common'] };
  let fake: FakeOpenProject;
  let rt: TestRuntime;
  let scoped: User;
  let global: User;
  const wp: Record<string, string[]> = { alpha: [], beta: [], common: [] };
  const responses: string[] = [];
  const { ok, refused } = toolCaller(() => rt, responses);

  before(async () => {
    fake = await new FakeOpenProject([worker]).start();
    for (const identifier of ['alpha', 'beta', 'common']) fake.addProject(identifier, identifier.toUpperCase());
    for (const [project, count] of [['alpha', 5], ['beta', 3], ['common', 1]] as const) {
      for (let i = 0; i < count; i++) wp[project]!.push(String(fake.addWorkPackage(project, worker, { subject: `${project} ${i}` }).id));
    }
    rt = await testRuntime({ env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true' } });
    const admin = await makeUser(rt, { roles: ['admin'] });
    await ok(admin, 'create_mandate_project', { key: 'ALPHA', name: 'Alpha work' });
    await ok(admin, 'create_mandate_project', { key: 'BETA', name: 'Beta work' });
    await ok(admin, 'bind_tracker_project', { project: 'ALPHA', tracker: 'openproject', tracker_project: String(fake.projects.get('alpha')!.id) });
    await ok(admin, 'bind_tracker_project', { project: 'BETA', tracker: 'openproject', tracker_project: String(fake.projects.get('beta')!.id) });
    scoped = await makeUser(rt, { roles: [['developer', 'ALPHA']] });
    global = await makeUser(rt, { roles: ['developer'] });
    for (const user of [scoped, global]) await ok(user, 'add_pm_connection', { provider: 'openproject', base_url: fake.url, api_key: worker.apiKey });
  });
  afterEach(() => assert.deepEqual(fake.takeViolations(), []));
  after(async () => {
    keepArtifact('responses', responses.join('\n'));
    assert.ok(!responses.join('\n').includes(worker.apiKey));
    await rt?.close();
    await fake?.stop();
  });

  test('pm:write only in ALPHA comments on an alpha work package and is refused on beta (naming BETA) and common (bound nowhere), with no change sent', async () => {
    assert.ok(await ok(scoped, 'add_comment', { key: wp.alpha![0]!, body: 'on it' }));
    const from = fake.requests.length;
    const beta = await refused(scoped, 'add_comment', { key: wp.beta![0]!, body: 'no' });
    assert.equal(beta.code, 'forbidden');
    assert.match(beta.message, /add_comment needs pm:write in project BETA/);
    assert.match((await refused(scoped, 'update_issue', { key: wp.common![0]!, summary: 'no' })).message, /needs pm:write globally \(tracker project \d+ is bound to no project\)/);
    assert.match((await refused(scoped, 'create_issue', { project: 'beta', type: 'Task', summary: 'no' })).message, /in project BETA/);
    const sent = fake.requests.slice(from);
    assert.ok(sent.length > 0 && sent.every((r) => r.method === 'GET'), 'only the reads that find the projects left Mandate');
    assert.ok(!fake.activities.some((a) => a.comment === 'no'));
    assert.ok(await ok(scoped, 'create_issue', { project: 'alpha', type: 'Task', summary: 'allowed' }));
  });

  test('what would move a work package or reach another is refused: _links in fields, another work package\'s comment by id', async () => {
    const from = fake.requests.length;
    const moved = await refused(scoped, 'update_issue', { key: wp.alpha![0]!, fields: { _links: { project: { href: `/api/v3/projects/${fake.projects.get('beta')!.id}` } } } });
    assert.deepEqual([moved.code, moved.field], ['invalid_input', 'fields._links']);
    const parent = await refused(scoped, 'transition_issue', { key: wp.alpha![0]!, name: 'Closed', fields: { _links: { parent: { href: `/api/v3/work_packages/${wp.beta![0]}` } } } });
    assert.equal(parent.field, 'fields._links');
    assert.equal(fake.requests.length, from, 'refused before any request');
    const theirs = await ok(global, 'add_comment', { key: wp.beta![1]!, body: 'beta note' });
    const crossed = await refused(scoped, 'edit_comment', { key: wp.alpha![0]!, comment_id: theirs.id, body: 'overwritten' });
    assert.deepEqual([crossed.code, crossed.field], ['not_found', 'comment_id']);
    assert.equal(fake.activities.find((a) => String(a.id) === theirs.id)!.comment, 'beta note', 'the other comment is unchanged');
    assert.ok(!fake.requests.slice(from).some((r) => r.method === 'PATCH'));
  });

  test('search_issues is confined in the filters to the bound projects the caller may read, across pages; project and filters cannot widen it', async () => {
    const { keys, pages } = await everySearchPage(ok, scoped, { limit: 2 });
    assert.ok(pages >= 3, 'paged');
    const alphaId = fake.projects.get('alpha')!.id;
    assert.deepEqual(keys, [...fake.workPackages.values()].filter((w) => w.projectId === alphaId).map((w) => String(w.id)).sort());
    const filters = JSON.parse(fake.requests.filter((r) => r.path === '/api/v3/work_packages').at(-1)!.query.get('filters')!);
    assert.deepEqual(filters.at(-1), { project: { operator: '=', values: [String(fake.projects.get('alpha')!.id)] } });
    const beta = await refused(scoped, 'search_issues', { project: 'beta' });
    assert.deepEqual([beta.code, beta.field], ['forbidden', 'project']);
    const widened = await refused(scoped, 'search_issues', { query: JSON.stringify([{ project: { operator: '=', values: [String(fake.projects.get('beta')!.id)] } }]) });
    assert.deepEqual([widened.code, widened.field], ['invalid_input', 'query']);
    assert.equal((await ok(scoped, 'search_issues', { project: 'alpha', limit: 50 })).items.length, keys.length);
    assert.equal((await ok(global, 'search_issues', { limit: 50 })).items.length, fake.workPackages.size, 'a global grant is not confined');
    // Should OpenProject read the filters otherwise, work packages outside the confinement refuse the call.
    fake.ignoreProjectFilterOnce = true;
    const leaked = await refused(scoped, 'search_issues', { limit: 50 });
    assert.equal(leaked.code, 'forbidden');
    assert.ok(!JSON.stringify(leaked).includes('beta 0'), 'nothing of them is shown');
    assert.deepEqual(await refused(scoped, 'search_issues', { query: '[null]' }).then((e) => [e.code, e.field]), ['invalid_input', 'query']);
  });

  test('a confined caller sees sub-tasks in projects it may read only, and no raw field naming other work packages', async () => {
    const parent = wp.alpha![1]!;
    const child = fake.workPackages.get(Number(wp.beta![2]))!;
    child.parentId = Number(parent);
    const own = fake.addWorkPackage('alpha', worker, { subject: 'alpha child', parentId: Number(parent) });
    try {
      const got = await ok(scoped, 'get_issue', { key: parent, include: ['subtasks'] });
      assert.deepEqual(got.subtasks.map((s: { key: string }) => s.key), [String(own.id)]);
      assert.ok(!JSON.stringify(got).includes(child.subject));
      assert.equal((await ok(global, 'get_issue', { key: parent, include: ['subtasks'] })).subtasks.length, 2);
      for (const name of ['parent', 'children', '_links']) assert.equal((await refused(scoped, 'get_issue', { key: String(own.id), fields: [name] })).field, 'fields', name);
    } finally {
      child.parentId = null;
      fake.workPackages.delete(own.id);
    }
  });

  test('an issue named in another input is refused on that field', async () => {
    assert.equal((await refused(scoped, 'update_issue', { key: wp.alpha![0]!, parent: 'ABC-1' })).field, 'parent');
    assert.equal((await refused(scoped, 'link_issues', { type: 'blocks', from: wp.alpha![0]!, to: 'ABC-1' })).field, 'to');
    assert.deepEqual(await refused(scoped, 'link_issues', { type: 'blocks', from: wp.alpha![0]!, to: '99999' }).then((e) => [e.code, e.field]), ['not_found', 'to']);
    assert.deepEqual(await refused(scoped, 'update_issue', { key: wp.alpha![0]!, parent: '99999' }).then((e) => [e.code, e.field]), ['not_found', 'parent']);
    assert.equal((await refused(scoped, 'get_issue', { key: '#ACME-1' })).field, 'key');
    assert.equal((await ok(scoped, 'get_issue', { key: `#${wp.alpha![0]}` })).key, wp.alpha![0]);
  });
});
