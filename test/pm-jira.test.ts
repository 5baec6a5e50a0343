import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { User } from '../lib/db/entities/index.ts';
import { makeUser } from './helpers/fixtures.ts';
import { toolCaller } from './helpers/pm.ts';
import { keepArtifact, recordSecret, testRuntime, type TestRuntime } from './helpers/db.ts';
import { FakeJira, type FakeUser, type Flavor } from './helpers/fake-jira.ts';
import { specsMissing } from './helpers/openapi.ts';

// Every Jira tool against fakes of Jira Cloud and Data Center that check each request against
// Atlassian's OpenAPI documents (../shared/jira/). A mismatch fails the test that caused it.

const missing = specsMissing();
if (missing) console.log(`# skipping the Jira suite: ${missing}`);

for (const flavor of ['cloud', 'dc'] as Flavor[]) {
  describe(`Jira ${flavor === 'cloud' ? 'Cloud' : 'Data Center'} tools`, { skip: missing ?? false }, () => {
    const provider = flavor === 'cloud' ? 'jira_cloud' : 'jira_dc';
    const secret = (who: string) => recordSecret(`${flavor}-${who}-token-${Math.random().toString(36).slice(2, 12)}`);
    const aliceJira: FakeUser = { accountId: '5b10a2844c20165700ede21g', name: 'alice', displayName: 'Alice Doe', emailAddress: 'alice@corp.test', secret: secret('alice'), projects: ['ALPHA', 'SHARED'] };
    const bobJira: FakeUser = { accountId: '5b10ac8d82e05b22cc7d4ef5', name: 'bob', displayName: 'Bob Roe', emailAddress: 'bob@corp.test', secret: secret('bob'), projects: ['BETA', 'SHARED'] };
    let fake: FakeJira;
    let rt: TestRuntime;
    let alice: User;
    let bob: User;
    let admin: User;
    let nobody: User;
    const sleeps: number[] = [];
    const connections: Record<string, string> = {};

    const responses: string[] = [];
    const { call, ok } = toolCaller(() => rt, responses);
    const credentials = (u: FakeUser) => (flavor === 'cloud' ? { email: u.emailAddress, api_token: u.secret } : { token: u.secret });

    before(async () => {
      fake = await new FakeJira(flavor, [aliceJira, bobJira]).start();
      rt = await testRuntime({
        env: { MANDATE_PM_ALLOW_NETWORKS: 'loopback', MANDATE_PM_ALLOW_HTTP: 'true', MANDATE_PM_TIMEOUT_MS: '400', MANDATE_PM_DEADLINE_MS: '5000', MANDATE_PM_ALLOW_DELETE: 'true' },
        sleep: async (ms) => {
          sleeps.push(ms);
        },
      });
      alice = await makeUser(rt, { roles: ['developer'] });
      bob = await makeUser(rt, { roles: ['developer'] });
      admin = await makeUser(rt, { roles: ['admin'] });
      nobody = await makeUser(rt, { roles: ['developer'] });
      connections.alice = (await ok(alice, 'add_pm_connection', { provider, base_url: fake.url, name: 'work', ...credentials(aliceJira) })).id;
      connections.bob = (await ok(bob, 'add_pm_connection', { provider, base_url: fake.url, ...credentials(bobJira) })).id;
      for (let i = 0; i < 7; i++) fake.addIssue('ALPHA', { summary: `alpha task ${i}` });
      fake.addIssue('BETA', { summary: 'bob only' });
    });

    afterEach(() => {
      const found = fake.takeMismatches();
      assert.deepEqual(found, [], `requests that do not conform to Atlassian's OpenAPI document:\n${found.join('\n')}`);
    });

    after(async () => {
      keepArtifact('responses', responses.join('\n'));
      const text = responses.join('\n');
      for (const user of [aliceJira, bobJira]) assert.ok(!text.includes(user.secret), 'no token in any tool result or error');
      await fake?.stop();
      await rt?.close();
    });

    test('add_pm_connection asks the tracker who the credentials belong to, and stores only a ciphertext', async () => {
      const list = await ok(alice, 'list_pm_connections');
      assert.equal(list.items.length, 1);
      const [mine] = list.items;
      assert.equal(mine.status, 'connected');
      assert.equal(mine.provider, provider);
      assert.equal(mine.default, true);
      assert.deepEqual(mine.account, { id: flavor === 'cloud' ? aliceJira.accountId : 'alice', name: 'Alice Doe' });
      assert.ok(mine.verified_at);
      assert.equal(list.providers.find((p: any) => p.provider === provider).status, 'connected');
      assert.equal(list.providers.find((p: any) => p.provider === 'redmine').status, 'not_connected');
      assert.ok(!JSON.stringify(list).includes(aliceJira.secret), 'the token is never shown');
      const [row] = (await rt.db.orm.em.fork().execute('select secret from pm_connection where id = ?', [connections.alice])) as { secret: string }[];
      assert.match(row!.secret, /^mv1:/);
      assert.ok(!row!.secret.includes(aliceJira.secret));
    });

    test('wrong credentials are refused on add, naming the field, and nothing is stored', async () => {
      const before = (await ok(nobody, 'list_pm_connections')).items.length;
      const wrong = flavor === 'cloud' ? { email: aliceJira.emailAddress, api_token: recordSecret('not-the-right-token-123') } : { token: recordSecret('not-the-right-token-123') };
      const result = await call(nobody, 'add_pm_connection', { provider, base_url: fake.url, ...wrong });
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.error.code, 'invalid_input');
      assert.equal(!result.ok && result.error.field, flavor === 'cloud' ? 'api_token' : 'token');
      assert.equal((await ok(nobody, 'list_pm_connections')).items.length, before);
      const missingField = await call(nobody, 'add_pm_connection', { provider, base_url: fake.url });
      assert.equal(!missingField.ok && missingField.error.field, flavor === 'cloud' ? 'email' : 'token');
    });

    test('search_issues pages through every match with opaque cursors, only in what the account can see', async () => {
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await ok(alice, 'search_issues', { project: 'ALPHA', limit: 3, ...(cursor ? { cursor } : {}) });
        assert.ok(page.items.length <= 3);
        seen.push(...page.items.map((i: any) => i.key));
        cursor = page.next_cursor ?? undefined;
        pages++;
      } while (cursor && pages < 10);
      assert.equal(pages, 3);
      assert.equal(new Set(seen).size, 7);
      assert.ok(seen.every((k) => k.startsWith('ALPHA-')));
      const searches = fake.requests.filter((r) => r.path.endsWith(flavor === 'cloud' ? '/search/jql' : '/search'));
      const last = searches.at(-1)!.body as any;
      assert.match(last.jql, /project = "ALPHA"/);
      if (flavor === 'cloud') assert.ok(last.nextPageToken, 'Cloud pages with nextPageToken');
      else assert.equal(last.startAt, 6);
      const all = await ok(alice, 'search_issues', { text: 'bob only' });
      assert.equal(all.items.length, 0, 'alice cannot find what only bob\'s account sees');
      const bobs = await ok(bob, 'search_issues', { text: 'bob only' });
      assert.equal(bobs.items.length, 1);
      const bad = await call(alice, 'search_issues', { cursor: 'not-a-cursor' });
      assert.equal(!bad.ok && bad.error.field, 'cursor');
    });

    test('search filters: assignee "me", status, updated_since, native query and requested fields', async () => {
      await ok(alice, 'assign_issue', { key: 'ALPHA-1', assignee: 'me' });
      const mine = await ok(alice, 'search_issues', { assignee: 'me', fields: ['customfield_10010'] });
      assert.deepEqual(mine.items.map((i: any) => i.key), ['ALPHA-1']);
      assert.equal(mine.items[0].assignee.name, 'Alice Doe');
      assert.ok('customfield_10010' in mine.items[0].fields);
      await ok(alice, 'search_issues', { query: 'project = ALPHA ORDER BY created ASC', status: 'To Do', updated_since: '2026-11-01' });
      const sent = (fake.requests.filter((r) => r.method === 'POST').at(-1)!.body as any).jql as string;
      assert.match(sent, /^\(project = ALPHA\) AND status = "To Do" AND updated >= "2026-11-01 00:00" ORDER BY created ASC$/);
      const badDate = await call(alice, 'search_issues', { updated_since: 'yesterday' });
      assert.equal(!badDate.ok && badDate.error.field, 'updated_since');
    });

    test('create, get (with comments, transitions, links, subtasks, history), update and delete; Markdown round trip', async () => {
      const markdown = '## Plan\n\nDo **this** and *that* with `code`, see [docs](https://example.test/docs).\n\n- one\n- two\n\n```ts\nconst x = 1;\n```';
      const created = await ok(alice, 'create_issue', { project: 'ALPHA', type: 'Task', summary: 'Round trip', description: markdown, labels: ['mcp'], priority: 'High', assignee: 'bob@corp.test' });
      assert.match(created.key, /^ALPHA-\d+$/);
      assert.equal(created.url, `${fake.url}/browse/${created.key}`);
      const sent = fake.calls('POST', `${fake.api}/issue`).at(-1)!.body as any;
      if (flavor === 'cloud') {
        assert.equal(sent.fields.description.type, 'doc');
        assert.equal(sent.fields.description.version, 1);
        assert.deepEqual(sent.fields.assignee, { accountId: bobJira.accountId });
      } else {
        // Data Center's document types `fields` values as objects: text goes as an update.
        const wiki = sent.update.description[0].set;
        assert.match(wiki, /^h2\. Plan/);
        assert.match(wiki, /\*this\* and _that_ with \{\{code\}\}, see \[docs\|https:\/\/example\.test\/docs\]/);
        assert.match(wiki, /\{code:ts\}\nconst x = 1;\n\{code\}/);
        assert.deepEqual(sent.update.summary, [{ set: 'Round trip' }]);
        assert.deepEqual(sent.fields.assignee, { name: 'bob' });
      }
      await ok(alice, 'add_comment', { key: created.key, body: 'first **comment**' });
      const got = await ok(alice, 'get_issue', { key: created.key, include: ['comments', 'transitions', 'links', 'subtasks', 'history'] });
      assert.equal(got.description, markdown);
      assert.equal(got.comments[0].body, 'first **comment**');
      assert.deepEqual(got.transitions.map((t: any) => t.name), ['Start progress', 'Done']);
      assert.deepEqual(got.links, []);
      assert.deepEqual(got.subtasks, []);
      assert.equal(got.history[0].changes[0].to, 'To Do');
      assert.equal(got.assignee.name, 'Bob Roe');
      assert.deepEqual(got.labels, ['mcp']);

      const updated = await ok(alice, 'update_issue', { key: created.key, summary: 'Round trip 2', labels: ['mcp', 'jira'] });
      assert.deepEqual(updated.updated, ['summary', 'labels']);
      assert.equal((await ok(alice, 'get_issue', { key: created.key })).summary, 'Round trip 2');
      const nothing = await call(alice, 'update_issue', { key: created.key });
      assert.equal(!nothing.ok && nothing.error.code, 'invalid_input');

      const rejected = await call(alice, 'create_issue', { project: 'BETA', type: 'Task', summary: 'not mine' });
      assert.equal(!rejected.ok && rejected.error.code, 'invalid_input');
      assert.match(!rejected.ok ? rejected.error.message : '', /valid project is required/);

      await ok(alice, 'delete_issue', { key: created.key });
      const gone = await call(alice, 'get_issue', { key: created.key });
      assert.equal(!gone.ok && gone.error.code, 'not_found');
    });

    test('long descriptions come back truncated with a marker', async () => {
      const long = 'word '.repeat(2000).trim();
      const created = await ok(alice, 'create_issue', { project: 'ALPHA', type: 'Task', summary: 'Long', description: long });
      const got = await ok(alice, 'get_issue', { key: created.key });
      assert.ok(got.description.length < long.length);
      assert.match(got.description, /… \[truncated: \d+ more characters\]$/);
    });

    test('workflow: transitions by name or id with a comment, assign by email, "me" and unassign', async () => {
      const listed = await ok(alice, 'list_transitions', { key: 'ALPHA-2' });
      assert.deepEqual(listed.items.map((t: any) => t.id), ['11', '21']);
      const moved = await ok(alice, 'transition_issue', { key: 'ALPHA-2', name: 'in progress', comment: 'starting' });
      assert.equal(moved.transition.id, '11');
      const sent = fake.calls('POST', `${fake.api}/issue/ALPHA-2/transitions`).at(-1)!.body as any;
      assert.deepEqual(sent.transition, { id: '11' });
      assert.ok(sent.update.comment[0].add.body);
      assert.equal((await ok(alice, 'get_issue', { key: 'ALPHA-2' })).status, 'In Progress');
      const byId = await ok(alice, 'transition_issue', { key: 'ALPHA-2', transition: '21' });
      assert.equal(byId.transition.to, 'Done');
      const unknown = await call(alice, 'transition_issue', { key: 'ALPHA-2', name: 'Teleport' });
      assert.equal(!unknown.ok && unknown.error.field, 'transition');
      assert.match(!unknown.ok ? unknown.error.message : '', /available: Start progress/);
      const neither = await call(alice, 'transition_issue', { key: 'ALPHA-2' });
      assert.equal(!neither.ok && neither.error.code, 'invalid_input');

      const assigned = await ok(alice, 'assign_issue', { key: 'ALPHA-3', assignee: 'bob@corp.test' });
      assert.equal(assigned.assignee.name, 'Bob Roe');
      const body = fake.calls('PUT', `${fake.api}/issue/ALPHA-3/assignee`).at(-1)!.body;
      assert.deepEqual(body, flavor === 'cloud' ? { accountId: bobJira.accountId } : { name: 'bob' });
      await ok(alice, 'assign_issue', { key: 'ALPHA-3', assignee: null });
      assert.equal((await ok(alice, 'get_issue', { key: 'ALPHA-3' })).assignee, null);
      const nobodyThere = await call(alice, 'assign_issue', { key: 'ALPHA-3', assignee: 'zed@nowhere.test' });
      assert.equal(!nobodyThere.ok && nobodyThere.error.field, 'assignee');
    });

    test('comments: list pages, add, edit', async () => {
      for (let i = 0; i < 3; i++) await ok(alice, 'add_comment', { key: 'ALPHA-4', body: `note ${i}` });
      const first = await ok(alice, 'list_comments', { key: 'ALPHA-4', limit: 2 });
      assert.deepEqual(first.items.map((c: any) => c.body), ['note 0', 'note 1']);
      const second = await ok(alice, 'list_comments', { key: 'ALPHA-4', limit: 2, cursor: first.next_cursor });
      assert.deepEqual(second.items.map((c: any) => c.body), ['note 2']);
      assert.equal(second.next_cursor, null);
      const edited = await ok(alice, 'edit_comment', { key: 'ALPHA-4', comment_id: first.items[0].id, body: 'note zero' });
      assert.equal(edited.body, 'note zero');
    });

    test('metadata: projects, a project, issue types, create fields, fields, statuses, priorities, users', async () => {
      const page1 = await ok(alice, 'list_projects', { limit: 1 });
      assert.equal(page1.items.length, 1);
      const page2 = await ok(alice, 'list_projects', { limit: 1, cursor: page1.next_cursor });
      assert.deepEqual([...page1.items, ...page2.items].map((p: any) => p.key).sort(), ['ALPHA', 'SHARED']);
      assert.equal(page2.next_cursor, null);
      const project = await ok(alice, 'get_project', { project: 'ALPHA' });
      assert.equal(project.name, 'Project ALPHA');
      assert.equal(project.issue_types.length, 2);
      assert.deepEqual((await ok(alice, 'list_issue_types', { project: 'ALPHA' })).items.map((t: any) => t.name), ['Task', 'Sub-task']);
      const fields = await ok(alice, 'get_create_fields', { project: 'ALPHA', issue_type: 'Task' });
      assert.deepEqual(fields.items.find((f: any) => f.id === 'priority').allowed_values, ['High', 'Medium']);
      assert.equal(fields.items.find((f: any) => f.id === 'summary').required, true);
      const noType = await call(alice, 'get_create_fields', { project: 'ALPHA', issue_type: 'Epic' });
      assert.equal(!noType.ok && noType.error.field, 'issue_type');
      assert.deepEqual((await ok(alice, 'search_fields', { query: 'story' })).items.map((f: any) => f.id), ['customfield_10010']);
      assert.deepEqual((await ok(alice, 'list_statuses', { project: 'ALPHA' })).items.map((s: any) => s.name), ['To Do', 'In Progress', 'Done']);
      assert.equal((await ok(alice, 'list_statuses', {})).items.length, 3);
      assert.deepEqual((await ok(alice, 'list_priorities')).items.map((p: any) => p.name), ['High', 'Medium']);
      const users = await ok(alice, 'search_users', { query: 'bob' });
      assert.deepEqual(users.items.map((u: any) => u.name), ['Bob Roe']);
      const hidden = await call(alice, 'get_project', { project: 'BETA' });
      assert.equal(!hidden.ok && hidden.error.code, 'not_found');
    });

    test('links: link types, link issues, remote link, set parent', async () => {
      assert.deepEqual((await ok(alice, 'list_link_types')).items.map((t: any) => t.name), ['Blocks', 'Relates']);
      await ok(alice, 'link_issues', { type: 'Blocks', from: 'ALPHA-5', to: 'ALPHA-6', comment: 'because' });
      const links = (await ok(alice, 'get_issue', { key: 'ALPHA-5', include: ['links'] })).links;
      assert.deepEqual(links.map((l: any) => [l.relation, l.issue]), [['blocks', 'ALPHA-6']]);
      const remote = await ok(alice, 'add_remote_link', { key: 'ALPHA-5', url: 'https://example.test/spec', title: 'Spec' });
      assert.ok(remote.id);
      assert.deepEqual(fake.remoteLinks.at(-1)!.object, { url: 'https://example.test/spec', title: 'Spec' });
      const parent = await call(alice, 'set_parent', { key: 'ALPHA-6', parent: 'ALPHA-5' });
      if (flavor === 'cloud') {
        assert.ok(parent.ok);
        assert.equal((await ok(alice, 'get_issue', { key: 'ALPHA-6' })).parent, 'ALPHA-5');
      } else {
        assert.equal(!parent.ok && parent.error.code, 'invalid_input');
        assert.match(!parent.ok ? parent.error.message : '', /not supported for Jira Data Center/);
      }
    });

    test('agile: boards, sprints, sprint issues, move to sprint and back to the backlog', async () => {
      fake.sprints.set(7, { id: 7, name: 'Sprint 7', state: 'active', board: 1, issues: [] });
      fake.sprints.set(8, { id: 8, name: 'Sprint 8', state: 'future', board: 1, issues: [] });
      const boards = await ok(alice, 'list_boards', { project: 'ALPHA' });
      assert.deepEqual(boards.items.map((b: any) => [b.id, b.project]), [['1', 'ALPHA']]);
      assert.deepEqual((await ok(alice, 'list_sprints', { board: '1', state: 'active' })).items.map((s: any) => s.name), ['Sprint 7']);
      await ok(alice, 'move_to_sprint', { sprint: '7', issues: ['ALPHA-1', 'ALPHA-2'] });
      assert.deepEqual((await ok(alice, 'list_sprint_issues', { sprint: '7' })).items.map((i: any) => i.key), ['ALPHA-1', 'ALPHA-2']);
      await ok(alice, 'move_to_backlog', { issues: ['ALPHA-1'] });
      assert.deepEqual((await ok(alice, 'list_sprint_issues', { sprint: '7' })).items.map((i: any) => i.key), ['ALPHA-2']);
      const badId = await call(alice, 'list_sprints', { board: 'one' });
      assert.equal(!badId.ok && badId.error.field, 'board');
    });

    test('worklogs: add and list', async () => {
      const added = await ok(alice, 'add_worklog', { key: 'ALPHA-7', time_spent: '1h 30m', started: '2026-11-20T09:00:00Z', comment: 'pairing' });
      assert.equal(added.time_spent, '1h 30m');
      const sent = fake.calls('POST', `${fake.api}/issue/ALPHA-7/worklog`).at(-1)!.body as any;
      assert.equal(sent.started, '2026-11-20T09:00:00.000+0000');
      const listed = await ok(alice, 'list_worklogs', { key: 'ALPHA-7' });
      assert.equal(listed.items.length, 1);
      assert.equal(listed.items[0].comment, 'pairing');
      const bad = await call(alice, 'add_worklog', { key: 'ALPHA-7', time_spent: 'a while' });
      assert.equal(!bad.ok && bad.error.field, 'time_spent');
    });

    test('429 is retried after Retry-After 0 and 2; a 500 on a read is retried; retries are capped', async () => {
      sleeps.length = 0;
      fake.script.push({ match: `GET ${fake.api}/priority`, status: 429, headers: { 'retry-after': '0' } });
      assert.equal((await ok(alice, 'list_priorities')).items.length, 2);
      fake.script.push({ match: `GET ${fake.api}/priority`, status: 429, headers: { 'retry-after': '2' } });
      assert.equal((await ok(alice, 'list_priorities')).items.length, 2);
      fake.script.push({ match: `GET ${fake.api}/priority`, status: 500, body: { errorMessages: ['boom'] } });
      assert.equal((await ok(alice, 'list_priorities')).items.length, 2);
      assert.deepEqual(sleeps, [0, 2000, 250]);
      for (let i = 0; i < 4; i++) fake.script.push({ match: `GET ${fake.api}/priority`, status: 429, headers: { 'retry-after': '1' } });
      const limited = await call(alice, 'list_priorities', {});
      assert.equal(!limited.ok && limited.error.code, 'rate_limited');
      assert.equal(fake.script.length, 0, 'one attempt and three retries');
      fake.script.push({ match: `GET ${fake.api}/priority`, status: 429, headers: { 'retry-after': '3600' } });
      const tooLong = await call(alice, 'list_priorities', {});
      assert.equal(!tooLong.ok && tooLong.error.code, 'rate_limited', 'a wait beyond the deadline is not waited');
      assert.match(!tooLong.ok ? tooLong.error.message : '', /3600 s/);
      fake.script.push({ match: `POST ${fake.api}/issue`, status: 500, body: { errorMessages: ['boom'] } });
      const write = await call(alice, 'create_issue', { project: 'ALPHA', type: 'Task', summary: 'once' });
      assert.equal(!write.ok && write.error.code, 'upstream_failed', 'a create that failed with 500 is not sent twice');
    });

    test('a tracker that does not answer in time is a timeout error', async () => {
      fake.script.push({ match: `GET ${fake.api}/priority`, status: 200, body: [], delayMs: 1500 });
      const result = await call(alice, 'list_priorities', {});
      assert.equal(!result.ok && result.error.code, 'upstream_timeout');
    });

    test('an edit sends only what changed: a summary edit leaves rich text alone; rewriting a description Markdown cannot carry is refused unless replace_rich_text', async () => {
      const rich = flavor === 'cloud'
        ? { type: 'doc', version: 1, content: [
            { type: 'panel', attrs: { panelType: 'warning' }, content: [{ type: 'paragraph', content: [{ type: 'text', text: 'careful' }] }] },
            { type: 'paragraph', content: [{ type: 'mention', attrs: { id: bobJira.accountId, text: '@Bob Roe' } }, { type: 'text', text: ' owns this', marks: [{ type: 'textColor', attrs: { color: '#ff0000' } }] }] },
          ] }
        : '{panel:title=Careful}careful{panel}\n[~bob] owns this {color:red}now{color}';
      const issue = fake.addIssue('ALPHA', { summary: 'rich', description: structuredClone(rich) });
      const put = () => fake.calls('PUT', `${fake.api}/issue/${issue.key}`);
      const sentBefore = put().length;
      const renamed = await ok(alice, 'update_issue', { key: issue.key, summary: 'rich, renamed' });
      assert.deepEqual(renamed.updated, ['summary']);
      const body = put().at(-1)!.body as { fields?: Record<string, unknown>; update?: Record<string, unknown> };
      assert.equal(put().length, sentBefore + 1);
      assert.ok(!('description' in (body.fields ?? {})) && !('description' in (body.update ?? {})), `no description in ${JSON.stringify(body)}`);
      assert.deepEqual(fake.issues.get(issue.key)!.fields.description, rich, 'the rich description is untouched');

      const lossy = await call(alice, 'update_issue', { key: issue.key, description: 'plain now' });
      assert.equal(!lossy.ok && lossy.error.code, 'invalid_input');
      assert.equal(!lossy.ok && lossy.error.field, 'description');
      assert.match(!lossy.ok ? lossy.error.message : '', /mentions.*panels|panels/);
      assert.match(!lossy.ok ? lossy.error.message : '', /replace_rich_text/);
      assert.equal(put().length, sentBefore + 1, 'a refused rewrite sends no PUT');
      assert.deepEqual(fake.issues.get(issue.key)!.fields.description, rich);

      const replaced = await ok(alice, 'update_issue', { key: issue.key, description: 'plain now', replace_rich_text: true });
      assert.deepEqual(replaced.updated, ['description']);
      assert.equal((await ok(alice, 'get_issue', { key: issue.key })).description, 'plain now');
      // A description Markdown carries whole is rewritten without asking.
      assert.deepEqual((await ok(alice, 'update_issue', { key: issue.key, description: 'plain **again**' })).updated, ['description']);
    });

    test('custom fields by name as well as id, read and written; an unknown name is refused on its field before any write', async () => {
      const issue = fake.addIssue('ALPHA', { summary: 'pointed' });
      const put = () => fake.calls('PUT', `${fake.api}/issue/${issue.key}`);
      const updated = await ok(alice, 'update_issue', { key: issue.key, fields: { 'Story Points': 5 } });
      assert.deepEqual(updated.updated, ['fields']);
      const body = JSON.stringify(put().at(-1)!.body);
      assert.match(body, /customfield_10010/);
      assert.doesNotMatch(body, /Story Points/);
      const got = await ok(alice, 'get_issue', { key: issue.key, fields: ['story points', 'customfield_10010'] });
      assert.deepEqual(got.fields, { 'story points': 5, customfield_10010: 5 });
      const sent = put().length;
      const unknown = await call(alice, 'update_issue', { key: issue.key, fields: { 'Nope Field': 1 } });
      assert.equal(!unknown.ok && unknown.error.code, 'invalid_input');
      assert.equal(!unknown.ok && unknown.error.field, 'fields.Nope Field');
      assert.match(!unknown.ok ? unknown.error.message : '', /search_fields/);
      assert.equal(put().length, sent);
      const own = await call(alice, 'update_issue', { key: issue.key, fields: { Summary: 'sneaky' } });
      assert.equal(!own.ok && own.error.field, 'fields.Summary');
    });

    test('credentials Jira answered as anonymous (200 with X-Seraph-LoginReason) are a refused connection, never empty results', async () => {
      const dave = await makeUser(rt, { roles: ['developer'] });
      await ok(dave, 'add_pm_connection', { provider, base_url: fake.url, ...credentials(aliceJira) });
      const search = flavor === 'cloud' ? `POST ${fake.api}/search/jql` : `POST ${fake.api}/search`;
      const empty = flavor === 'cloud' ? { issues: [], isLast: true } : { issues: [], startAt: 0, maxResults: 25, total: 0 };
      fake.script.push({ match: search, status: 200, body: empty, headers: { 'x-seraph-loginreason': 'AUTHENTICATED_FAILED', 'x-ausername': 'anonymous' } });
      const result = await call(dave, 'search_issues', { project: 'ALPHA' });
      assert.equal(!result.ok && result.error.code, 'connection_invalid', JSON.stringify(result));
      assert.equal((await ok(dave, 'list_pm_connections')).items[0].status, 'invalid');
      // The same answer with the login accepted is a real empty result.
      const erin = await makeUser(rt, { roles: ['developer'] });
      await ok(erin, 'add_pm_connection', { provider, base_url: fake.url, ...credentials(aliceJira) });
      fake.script.push({ match: search, status: 200, body: empty, headers: { 'x-seraph-loginreason': 'OK', 'x-ausername': 'alice' } });
      assert.deepEqual((await ok(erin, 'search_issues', { project: 'ALPHA' })).items, []);
    });

    test('an API the tracker removed (410 Gone) is a clear tool error quoting the tracker, never an empty result', async () => {
      const search = flavor === 'cloud' ? `POST ${fake.api}/search/jql` : `POST ${fake.api}/search`;
      fake.script.push({ match: search, status: 410, body: { errorMessages: ['The requested API has been removed. Please migrate to the /rest/api/3/search/jql API.'] } });
      const result = await call(alice, 'search_issues', { project: 'ALPHA' });
      assert.equal(!result.ok && result.error.code, 'upstream_failed');
      assert.match(!result.ok ? result.error.message : '', /no longer serves the API this tool uses \(HTTP 410 Gone/);
      assert.match(!result.ok ? result.error.message : '', /migrate to the \/rest\/api\/3\/search\/jql API/);
    });

    test('an upstream 401 marks the connection invalid; later calls say so without asking the tracker', async () => {
      const carol = await makeUser(rt, { roles: ['developer'] });
      await ok(carol, 'add_pm_connection', { provider, base_url: fake.url, ...credentials(aliceJira) });
      fake.script.push({ match: `GET ${fake.api}/status`, status: 401, body: { errorMessages: ['token revoked'] } });
      const refused = await call(carol, 'list_statuses', {});
      assert.equal(!refused.ok && refused.error.code, 'connection_invalid');
      const listed = await ok(carol, 'list_pm_connections');
      assert.equal(listed.items[0].status, 'invalid');
      const count = fake.requests.length;
      const again = await call(carol, 'list_statuses', {});
      assert.equal(!again.ok && again.error.code, 'connection_invalid');
      assert.equal(fake.requests.length, count, 'no request reaches the tracker');
      const tested = await ok(carol, 'test_pm_connection', { id: listed.items[0].id });
      assert.equal(tested.status, 'connected', 'a successful test restores it');
      assert.ok((await call(carol, 'list_statuses', {})).ok);
    });

    test('isolation: only my connection is used; another user\'s id is not found; no connection, no request', async () => {
      await ok(alice, 'get_issue', { key: 'ALPHA-1' });
      const aliceCall = fake.requests.at(-1)!;
      assert.equal(aliceCall.user, 'alice');
      await ok(bob, 'search_issues', {});
      assert.equal(fake.requests.at(-1)!.user, 'bob');
      const stolen = await call(alice, 'get_issue', { key: 'SHARED-1', connection: connections.bob });
      assert.equal(!stolen.ok && stolen.error.code, 'not_found');
      assert.equal(!stolen.ok && stolen.error.field, 'connection');
      for (const op of ['remove_pm_connection', 'test_pm_connection', 'set_default_pm_connection']) {
        const other = await call(alice, op, { id: connections.bob });
        assert.equal(!other.ok && other.error.code, 'not_found', op);
      }
      const count = fake.requests.length;
      const none = await call(nobody, 'search_issues', {});
      assert.equal(!none.ok && none.error.code, 'connection_required');
      assert.match(!none.ok ? none.error.message : '', /add_pm_connection/);
      assert.match(!none.ok ? none.error.message : '', /POST \/api\/v1\/user\/credentials/);
      assert.equal(fake.requests.length, count, 'no upstream request without a connection');
      const adminView = await ok(admin, 'list_pm_connections');
      assert.equal(adminView.items.length, 0, 'an admin sees only their own connections');
    });

    test('pm:read lists and reads; pm:write is needed to change the tracker', async () => {
      const viewer = await makeUser(rt, { roles: ['viewer'] });
      await ok(viewer, 'add_pm_connection', { provider, base_url: fake.url, ...credentials(bobJira) });
      assert.ok((await call(viewer, 'search_issues', {})).ok);
      const count = fake.requests.length;
      const denied = await call(viewer, 'add_comment', { key: 'BETA-1', body: 'hi' });
      assert.equal(!denied.ok && denied.error.code, 'forbidden');
      assert.match(!denied.ok ? denied.error.message : '', /pm:write/);
      assert.equal(fake.requests.length, count);
    });

    test('default connection: the first is the default, set_default switches, removal promotes the next', async () => {
      const dana = await makeUser(rt, { roles: ['developer'] });
      const first = await ok(dana, 'add_pm_connection', { provider, base_url: fake.url, name: 'as-alice', ...credentials(aliceJira) });
      const second = await ok(dana, 'add_pm_connection', { provider, base_url: fake.url, name: 'as-bob', ...credentials(bobJira) });
      assert.equal(first.default, true);
      assert.equal(second.default, false);
      await ok(dana, 'search_issues', {});
      assert.equal(fake.requests.at(-1)!.user, 'alice');
      await ok(dana, 'search_issues', { connection: 'as-bob' });
      assert.equal(fake.requests.at(-1)!.user, 'bob');
      await ok(dana, 'set_default_pm_connection', { id: 'as-bob' });
      await ok(dana, 'search_issues', {});
      assert.equal(fake.requests.at(-1)!.user, 'bob');
      const duplicate = await call(dana, 'add_pm_connection', { provider, base_url: fake.url, name: 'as-bob', ...credentials(bobJira) });
      assert.equal(!duplicate.ok && duplicate.error.code, 'conflict');
      const removed = await ok(dana, 'remove_pm_connection', { id: second.id });
      assert.equal(removed.new_default, 'as-alice');
      const list = await ok(dana, 'list_pm_connections');
      assert.deepEqual(list.items.map((c: any) => [c.name, c.default]), [['as-alice', true]]);
    });
  });
}
