import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { formFiles, MULTIPART, NOT_JSON, readBody, serveOnLoopback, stopServer } from './loopback.ts';
import { OpenApiChecker, CLOUD_SPEC, DC_SPEC } from './openapi.ts';

// A Jira on loopback for tests: Cloud (REST v3, ADF, accountId, /search/jql with nextPageToken)
// or Data Center (REST v2, wiki markup, username, startAt). Every request it receives is checked
// against Atlassian's OpenAPI document (takeMismatches() says what did not conform). Users see
// only what their own credentials allow (projects are per user), so isolation can be observed.

type Json = Record<string, any>;
export type Flavor = 'cloud' | 'dc';

export interface FakeUser {
  accountId: string;
  name: string;
  displayName: string;
  emailAddress: string;
  /** Cloud: the API token (with the email); DC: the personal access token. */
  secret: string;
  /** Project keys this user can see. */
  projects: string[];
}

export interface Scripted {
  /** e.g. "GET /rest/api/3/myself" (method and path, no query). */
  match: string;
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Answer after this many ms (timeouts). */
  delayMs?: number;
}

const checkers = new Map<string, OpenApiChecker>();
function checker(file: string, prefix: string, name: string): OpenApiChecker {
  const key = `${file}|${prefix}`;
  let found = checkers.get(key);
  if (!found) checkers.set(key, (found = new OpenApiChecker(file, prefix, name)));
  return found;
}

export class FakeJira {
  readonly flavor: Flavor;
  readonly users: FakeUser[];
  /** Requests not yet checked against the OpenAPI document (checking compiles schemas: slow). */
  private readonly unchecked: { method: string; url: URL; body: unknown; parts?: string[] }[] = [];
  /** Attachments' bytes by id (their metadata is in the issue's `attachment` field). */
  readonly attachmentData = new Map<string, Buffer>();
  readonly requests: { method: string; path: string; query: URLSearchParams; body: unknown; user: string | null; authorization: string }[] = [];
  readonly script: Scripted[] = [];
  readonly issues = new Map<string, Json>();
  readonly remoteLinks: Json[] = [];
  readonly links: Json[] = [];
  readonly sprints = new Map<number, { id: number; name: string; state: string; board: number; issues: string[] }>();
  private server!: Server;
  private nextId = 10000;
  url = '';
  /**
   * Atlassian's API gateway for OAuth tokens (Cloud): requests under /ex/jira/<cloudId> authenticate
   * with one of these access tokens, and /oauth/token/accessible-resources lists the site.
   */
  readonly gateway = { cloudId: 'c0ffee00-1111-4222-8333-444455556666', accessTokens: new Map<string, FakeUser>() };

  constructor(flavor: Flavor, users: FakeUser[]) {
    this.flavor = flavor;
    this.users = users;
  }

  get api(): string {
    return this.flavor === 'cloud' ? '/rest/api/3' : '/rest/api/2';
  }

  async start(): Promise<this> {
    ({ server: this.server, url: this.url } = await serveOnLoopback((req, res) => void this.handle(req, res)));
    return this;
  }

  stop(): Promise<void> {
    return stopServer(this.server);
  }

  /** Requests of the platform or agile API that went to this fake (not the scripted ones' bodies). */
  calls(method: string, path: string) {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  addIssue(project: string, fields: Json = {}): Json {
    const id = String(this.nextId++);
    const key = `${project}-${this.issues.size + 1}`;
    const reporter = this.users.find((u) => u.projects.includes(project));
    const issue = {
      id,
      key,
      fields: {
        summary: `Issue ${key}`,
        status: { name: 'To Do', id: '1' },
        issuetype: { name: 'Task', id: '10001' },
        priority: { name: 'Medium', id: '3' },
        project: { key: project, id: `1${project.length}`, name: `Project ${project}` },
        labels: [],
        assignee: null,
        reporter: reporter ? this.userJson(reporter) : null,
        created: '2026-11-01T10:00:00.000+0000',
        updated: `2026-11-${String(10 + (this.issues.size % 18)).padStart(2, '0')}T10:00:00.000+0000`,
        description: null,
        comment: { comments: [], total: 0 },
        issuelinks: [],
        subtasks: [],
        worklog: [],
        attachment: [],
        ...fields,
      },
      changelog: { histories: [{ id: '1', created: '2026-11-02T10:00:00.000+0000', author: { displayName: 'Alice' }, items: [{ field: 'status', fromString: 'Open', toString: 'To Do' }] }] },
    };
    this.issues.set(key, issue);
    return issue;
  }

  private userJson(user: FakeUser): Json {
    return this.flavor === 'cloud'
      ? { accountId: user.accountId, displayName: user.displayName, emailAddress: user.emailAddress, active: true }
      : { name: user.name, key: user.name, displayName: user.displayName, emailAddress: user.emailAddress, active: true };
  }

  private authenticate(req: IncomingMessage): FakeUser | null {
    const header = req.headers.authorization ?? '';
    if (this.flavor === 'cloud') {
      if (!header.startsWith('Basic ')) return null;
      const [email, token] = Buffer.from(header.slice(6), 'base64').toString().split(/:(.*)/s);
      return this.users.find((u) => u.emailAddress === email && u.secret === token) ?? null;
    }
    if (!header.startsWith('Bearer ')) return null;
    return this.users.find((u) => u.secret === header.slice(7)) ?? null;
  }

  /** Strips the gateway's /ex/jira/<cloudId> prefix (true when it was there). */
  private throughGateway(url: URL): boolean | 'resources' {
    if (url.pathname === '/oauth/token/accessible-resources') return 'resources';
    const prefix = `/ex/jira/${this.gateway.cloudId}/`;
    if (!url.pathname.startsWith(prefix)) return false;
    url.pathname = url.pathname.slice(prefix.length - 1);
    return true;
  }

  private accessibleResources(req: IncomingMessage, res: ServerResponse): void {
    const user = this.gateway.accessTokens.get((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    this.requests.push({ method: 'GET', path: '/oauth/token/accessible-resources', query: new URLSearchParams(), body: undefined, user: user?.name ?? null, authorization: req.headers.authorization ?? '' });
    if (!user) return this.send(res, 401, { code: 401, message: 'Unauthorized' });
    this.send(res, 200, [{ id: this.gateway.cloudId, url: 'https://acme.atlassian.net', name: 'acme', scopes: ['read:jira-work', 'write:jira-work', 'read:jira-user'], avatarUrl: 'https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png' }]);
  }

  /** What did not conform among the requests received since the last call. */
  takeMismatches(): string[] {
    const found: string[] = [];
    for (const { method, url, body, parts } of this.unchecked.splice(0)) {
      // Data Center's attachment servlet (its download) is not part of the REST API.
      if (this.flavor === 'dc' && url.pathname.startsWith('/secure/attachment/')) continue;
      found.push(...this.check(method, url, body, parts));
    }
    return found;
  }

  private check(method: string, url: URL, body: unknown, parts?: string[]): string[] {
    const docs = this.flavor === 'cloud'
      ? url.pathname.startsWith('/rest/agile/')
        // Atlassian publishes no OpenAPI document of the Cloud agile API here; its 1.0 resources are the Data Center ones.
        ? checker(DC_SPEC, '/rest', 'Jira Software DC (agile 1.0)')
        : checker(CLOUD_SPEC, '', 'Jira Cloud platform v3')
      : checker(DC_SPEC, '/rest', 'Jira Software DC 10.3');
    return docs.check(method, url, parts ? undefined : body, parts);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, form } = await readBody(req);
    if (body === NOT_JSON) return this.send(res, 400, { errorMessages: ['body is not JSON'] });
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const viaGateway = this.throughGateway(url);
    if (viaGateway === 'resources') return this.accessibleResources(req, res);
    this.unchecked.push({ method, url, body, ...(form ? { parts: [...new Set(form.keys())] } : {}) });
    const user = viaGateway ? this.gateway.accessTokens.get((req.headers.authorization ?? '').replace(/^Bearer /, '')) ?? null : this.authenticate(req);
    this.requests.push({ method, path: url.pathname, query: url.searchParams, body, user: user?.name ?? null, authorization: req.headers.authorization ?? '' });
    const scripted = this.script.findIndex((s) => s.match === `${method} ${url.pathname}`);
    if (scripted >= 0) {
      const [step] = this.script.splice(scripted, 1);
      if (step!.delayMs) await new Promise((resolve) => setTimeout(resolve, step!.delayMs));
      if (res.destroyed) return;
      return this.send(res, step!.status, step!.body ?? {}, step!.headers);
    }
    if (!user) return this.send(res, 401, { errorMessages: ['You are not authenticated. Authentication required to perform this operation.'] });
    try {
      const download = this.download(method, url, user);
      if (download) {
        res.writeHead(download.status, download.headers);
        return void res.end(download.data);
      }
      if (body === MULTIPART) {
        const [status, answer] = await this.upload(url, form!, req.headers['x-atlassian-token'], user);
        return this.send(res, status, answer);
      }
      const [status, answer] = this.route(method, url, body as Json, user);
      this.send(res, status, answer);
    } catch (error) {
      this.send(res, 500, { errorMessages: [String((error as Error).message)] });
    }
  }

  /** An attachment to `key`, as Jira lists it in the issue's `attachment` field. */
  addAttachment(key: string, filename: string, mimeType: string, data: Buffer, by: FakeUser): Json {
    const issue = this.issues.get(key)!;
    const id = String(this.nextId++);
    const meta = { id, self: `${this.url}${this.api}/attachment/${id}`, filename, author: this.userJson(by), created: '2026-11-21T10:00:00.000+0000', size: data.length, mimeType, content: `${this.url}/secure/attachment/${id}/${encodeURIComponent(filename)}` };
    (issue.fields.attachment ??= []).push(meta);
    this.attachmentData.set(id, data);
    return meta;
  }

  private attachmentSeen(user: FakeUser, id: string): { issue: Json; meta: Json } | null {
    for (const issue of this.issues.values()) {
      const meta = ((issue.fields.attachment ?? []) as Json[]).find((a) => a.id === id);
      if (meta) return this.visible(user, issue.key) ? { issue, meta } : null;
    }
    return null;
  }

  /** Attachment bytes: Cloud's content resource (a redirect to its media host unless redirect=false), Data Center's servlet. */
  private download(method: string, url: URL, user: FakeUser): { status: number; headers: Record<string, string>; data: Buffer | string } | null {
    if (method !== 'GET') return null;
    const cloud = /^\/rest\/api\/3\/attachment\/content\/([^/]+)$/.exec(url.pathname);
    const dc = /^\/secure\/attachment\/([^/]+)\/[^/]+$/.exec(url.pathname);
    const id = this.flavor === 'cloud' ? cloud?.[1] : dc?.[1];
    if (!id) return null;
    const seen = this.attachmentSeen(user, decodeURIComponent(id));
    if (!seen) return { status: 404, headers: { 'content-type': 'application/json' }, data: JSON.stringify({ errorMessages: ['The attachment does not exist'] }) };
    if (this.flavor === 'cloud' && url.searchParams.get('redirect') !== 'false') return { status: 303, headers: { location: `https://api.media.atlassian.com/file/${id}/binary` }, data: '' };
    return { status: 200, headers: { 'content-type': seen.meta.mimeType }, data: this.attachmentData.get(seen.meta.id)! };
  }

  /** POST .../issue/{key}/attachments: the "file" parts, with Jira's XSRF header required. */
  private async upload(url: URL, form: FormData, xsrf: string | string[] | undefined, user: FakeUser): Promise<[number, unknown]> {
    const m = new RegExp(`^${this.api}/issue/([^/]+)/attachments$`).exec(url.pathname);
    if (!m) return [415, { errorMessages: ['multipart is taken by the attachments resource only'] }];
    if (xsrf !== 'no-check') return [403, { errorMessages: ['XSRF check failed'] }];
    const issue = this.visible(user, decodeURIComponent(m[1]!));
    if (!issue) return [404, { errorMessages: ['Issue does not exist or you do not have permission to see it.'] }];
    const files = await formFiles(form, 'file');
    if (!files.length) return [400, { errorMessages: ['no "file" part'] }];
    const created = files.map((file) => this.addAttachment(issue.key, file.name, file.type || 'application/octet-stream', file.data, user));
    return [200, created];
  }

  private send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = status === 204 ? '' : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  }

  private visible(user: FakeUser, key: string): Json | null {
    const issue = this.issues.get(key);
    return issue && user.projects.includes(issue.fields.project.key) ? issue : null;
  }

  private pick(issue: Json, fields: string[] | null): Json {
    if (!fields) return issue;
    const out: Json = {};
    for (const f of fields) if (f in issue.fields) out[f] = issue.fields[f];
    return { id: issue.id, key: issue.key, fields: out };
  }

  /** A deliberately small JQL: project (= or in), assignee (currentUser() or an id), status, text, ORDER BY. */
  private jql(user: FakeUser, jql: string): Json[] {
    let issues = [...this.issues.values()].filter((i) => user.projects.includes(i.fields.project.key));
    const project = /project = "([^"]+)"/.exec(jql)?.[1];
    if (project) issues = issues.filter((i) => i.fields.project.key === project);
    const within = /project in \(([^)]*)\)/.exec(jql)?.[1];
    if (within !== undefined) {
      const keys = [...within.matchAll(/"([^"]+)"/g)].map((match) => match[1]);
      issues = issues.filter((i) => keys.includes(i.fields.project.key));
    }
    if (/assignee = currentUser\(\)/.test(jql)) issues = issues.filter((i) => i.fields.assignee && this.idOf(i.fields.assignee) === this.idOf(this.userJson(user)));
    const assignee = /assignee = "([^"]+)"/.exec(jql)?.[1];
    if (assignee) issues = issues.filter((i) => i.fields.assignee && this.idOf(i.fields.assignee) === assignee);
    const status = /status = "([^"]+)"/.exec(jql)?.[1];
    if (status) issues = issues.filter((i) => i.fields.status.name === status);
    const text = /text ~ "([^"]+)"/.exec(jql)?.[1];
    if (text) issues = issues.filter((i) => i.fields.summary.includes(text));
    return issues.sort((a, b) => String(b.fields.updated).localeCompare(String(a.fields.updated)) || b.id.localeCompare(a.id));
  }

  private idOf(user: Json): string {
    return this.flavor === 'cloud' ? user.accountId : user.name;
  }

  private findUser(ref: Json): FakeUser | undefined {
    return this.users.find((u) => (this.flavor === 'cloud' ? u.accountId === ref.accountId : u.name === ref.name));
  }

  private route(method: string, url: URL, body: Json, user: FakeUser): [number, unknown] {
    const path = url.pathname;
    const api = this.api;
    const notFound: [number, unknown] = [404, { errorMessages: ['Issue does not exist or you do not have permission to see it.'], errors: {} }];
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === `${api}/myself`) return [200, this.userJson(user)];
    if (method === 'POST' && path === `${api}/search/jql` && this.flavor === 'cloud') {
      const all = this.jql(user, body.jql);
      const start = body.nextPageToken ? Number(Buffer.from(body.nextPageToken, 'base64').toString()) : 0;
      const page = all.slice(start, start + (body.maxResults ?? 50));
      const next = start + page.length;
      return [200, { issues: page.map((i) => this.pick(i, body.fields ?? null)), isLast: next >= all.length, ...(next < all.length ? { nextPageToken: Buffer.from(String(next)).toString('base64') } : {}) }];
    }
    if (method === 'POST' && path === `${api}/search` && this.flavor === 'dc') {
      const all = this.jql(user, body.jql);
      const start = body.startAt ?? 0;
      const page = all.slice(start, start + (body.maxResults ?? 50));
      return [200, { startAt: start, maxResults: body.maxResults, total: all.length, issues: page.map((i) => this.pick(i, body.fields ?? null)) }];
    }
    if (method === 'POST' && path === `${api}/issue`) {
      const f = this.edits(body);
      if (!f.summary) return [400, { errorMessages: [], errors: { summary: 'You must specify a summary of the issue.' } }];
      if (!user.projects.includes(f.project?.key)) return [400, { errorMessages: [], errors: { project: 'valid project is required' } }];
      const issue = this.addIssue(f.project.key, {
        summary: f.summary,
        description: f.description ?? null,
        issuetype: { name: f.issuetype?.name ?? 'Task', id: f.issuetype?.id ?? '10001' },
        labels: f.labels ?? [],
        ...(f.priority ? { priority: { name: f.priority.name } } : {}),
        ...(f.assignee ? { assignee: this.userJson(this.findUser(f.assignee)!) } : {}),
        ...(f.parent ? { parent: { key: f.parent.key } } : {}),
        reporter: this.userJson(user),
      });
      return [201, { id: issue.id, key: issue.key, self: `${this.url}${api}/issue/${issue.id}` }];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)$`).exec(path))) {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      if (!issue) return notFound;
      if (method === 'GET') {
        const fields = url.searchParams.get('fields')?.split(',') ?? null;
        const expand = url.searchParams.get('expand')?.split(',') ?? [];
        return [200, { ...this.pick(issue, fields), ...(expand.includes('changelog') ? { changelog: issue.changelog } : {}), ...(expand.includes('transitions') ? { transitions: this.transitions() } : {}) }];
      }
      if (method === 'PUT') {
        const f = this.edits(body);
        for (const [k, v] of Object.entries(f)) {
          if (k === 'assignee') issue.fields.assignee = v ? this.userJson(this.findUser(v as Json)!) : null;
          else if (k === 'priority') issue.fields.priority = { name: (v as Json).name };
          else issue.fields[k] = v;
        }
        return [204, null];
      }
      if (method === 'DELETE') {
        this.issues.delete(issue.key);
        return [204, null];
      }
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/transitions$`).exec(path))) {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      if (!issue) return notFound;
      if (method === 'GET') return [200, { transitions: this.transitions() }];
      const chosen = this.transitions().find((t) => t.id === body.transition?.id);
      if (!chosen) return [400, { errorMessages: ['Transition id is not valid for this issue.'] }];
      issue.fields.status = { name: chosen.to.name, id: chosen.to.id };
      for (const c of body.update?.comment ?? []) this.comment(issue, user, c.add.body);
      return [204, null];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/assignee$`).exec(path)) && method === 'PUT') {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      if (!issue) return notFound;
      const target = body.accountId === null || body.name === null ? null : this.findUser(body);
      if (target === undefined) return [400, { errorMessages: ['User does not exist.'] }];
      issue.fields.assignee = target ? this.userJson(target) : null;
      return [204, null];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/comment$`).exec(path))) {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      if (!issue) return notFound;
      if (method === 'POST') return [201, this.comment(issue, user, body.body)];
      const all = issue.fields.comment.comments as Json[];
      const start = Number(url.searchParams.get('startAt') ?? 0);
      const max = Number(url.searchParams.get('maxResults') ?? 50);
      return [200, { startAt: start, maxResults: max, total: all.length, comments: all.slice(start, start + max) }];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/comment/([^/]+)$`).exec(path)) && method === 'PUT') {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      const comment = (issue?.fields.comment.comments as Json[] | undefined)?.find((c) => c.id === m![2]);
      if (!issue || !comment) return notFound;
      comment.body = body.body;
      comment.updated = '2026-11-20T10:00:00.000+0000';
      return [200, comment];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/worklog$`).exec(path))) {
      const issue = this.visible(user, decodeURIComponent(m[1]!));
      if (!issue) return notFound;
      const all = issue.fields.worklog as Json[];
      if (method === 'POST') {
        const log = { id: String(this.nextId++), author: this.userJson(user), timeSpent: body.timeSpent, timeSpentSeconds: 3600, started: body.started ?? '2026-11-20T10:00:00.000+0000', comment: body.comment ?? null };
        all.push(log);
        return [201, log];
      }
      const start = Number(url.searchParams.get('startAt') ?? 0);
      const max = Number(url.searchParams.get('maxResults') ?? 5000);
      return [200, { startAt: start, maxResults: max, total: all.length, worklogs: this.flavor === 'cloud' ? all.slice(start, start + max) : all }];
    }
    if ((m = new RegExp(`^${api}/attachment/([^/]+)$`).exec(path)) && method === 'DELETE') {
      const seen = this.attachmentSeen(user, decodeURIComponent(m[1]!));
      if (!seen) return [404, { errorMessages: ['The attachment does not exist'] }];
      seen.issue.fields.attachment = (seen.issue.fields.attachment as Json[]).filter((a) => a.id !== seen.meta.id);
      this.attachmentData.delete(seen.meta.id);
      return [204, null];
    }
    if ((m = new RegExp(`^${api}/issue/([^/]+)/remotelink$`).exec(path)) && method === 'POST') {
      if (!this.visible(user, decodeURIComponent(m[1]!))) return notFound;
      const link = { id: this.nextId++, issue: m[1], ...body };
      this.remoteLinks.push(link);
      return [201, { id: link.id, self: `${this.url}/remotelink/${link.id}` }];
    }
    if (method === 'GET' && path === `${api}/user/search`) {
      const q = (url.searchParams.get(this.flavor === 'cloud' ? 'query' : 'username') ?? '').toLowerCase();
      return [200, this.users.filter((u) => `${u.displayName} ${u.emailAddress} ${u.name}`.toLowerCase().includes(q)).map((u) => this.userJson(u))];
    }
    const projects = () => user.projects.map((key) => ({ id: `1${key.length}${key}`, key, name: `Project ${key}`, lead: this.userJson(user), description: `About ${key}` }));
    if (method === 'GET' && path === `${api}/project/search` && this.flavor === 'cloud') {
      const start = Number(url.searchParams.get('startAt') ?? 0);
      const max = Number(url.searchParams.get('maxResults') ?? 50);
      const all = projects();
      return [200, { startAt: start, maxResults: max, total: all.length, isLast: start + max >= all.length, values: all.slice(start, start + max) }];
    }
    if (method === 'GET' && path === `${api}/project` && this.flavor === 'dc') return [200, projects()];
    if ((m = new RegExp(`^${api}/project/([^/]+)$`).exec(path)) && method === 'GET') {
      const project = projects().find((p) => p.key === m![1]);
      return project ? [200, { ...project, issueTypes: [{ id: '10001', name: 'Task', subtask: false }, { id: '10002', name: 'Sub-task', subtask: true }] }] : [404, { errorMessages: [`No project could be found with key '${m[1]}'.`] }];
    }
    if ((m = new RegExp(`^${api}/project/([^/]+)/statuses$`).exec(path)) && method === 'GET') {
      return [200, [{ id: '10001', name: 'Task', statuses: [{ id: '1', name: 'To Do' }, { id: '3', name: 'In Progress' }] }, { id: '10002', name: 'Sub-task', statuses: [{ id: '1', name: 'To Do' }, { id: '5', name: 'Done' }] }]];
    }
    if ((m = new RegExp(`^${api}/issue/createmeta/([^/]+)/issuetypes$`).exec(path)) && method === 'GET') {
      if (!user.projects.includes(m[1]!)) return [404, { errorMessages: ['project not found'] }];
      const types = [{ id: '10001', name: 'Task', subtask: false }, { id: '10002', name: 'Sub-task', subtask: true }];
      return [200, this.flavor === 'cloud' ? { issueTypes: types, maxResults: 50, startAt: 0, total: 2 } : { values: types, maxResults: 50, startAt: 0, total: 2 }];
    }
    if ((m = new RegExp(`^${api}/issue/createmeta/([^/]+)/issuetypes/([^/]+)$`).exec(path)) && method === 'GET') {
      const fields = [
        { fieldId: 'summary', key: 'summary', name: 'Summary', required: true, schema: { type: 'string' } },
        { fieldId: 'priority', key: 'priority', name: 'Priority', required: false, schema: { type: 'priority' }, allowedValues: [{ id: '1', name: 'High' }, { id: '3', name: 'Medium' }] },
      ];
      return [200, this.flavor === 'cloud' ? { fields, maxResults: 50, startAt: 0, total: 2 } : { values: fields, maxResults: 50, startAt: 0, total: 2 }];
    }
    if (method === 'GET' && path === `${api}/field`) {
      return [200, [
        { id: 'summary', name: 'Summary', custom: false, schema: { type: 'string' } },
        { id: 'customfield_10010', name: 'Story Points', custom: true, schema: { type: 'number' } },
        { id: 'issuelinks', name: 'Linked Issues', custom: false, schema: { type: 'array', items: 'issuelinks', system: 'issuelinks' } },
        { id: 'subtasks', name: 'Sub-tasks', custom: false, schema: { type: 'array', items: 'issuelinks', system: 'subtasks' } },
        { id: 'parent', name: 'Parent', custom: false, schema: { type: 'issuelink', system: 'parent' } },
        { id: 'customfield_10020', name: 'Sprint', custom: true, schema: { type: 'array', items: 'json', custom: 'com.pyxis.greenhopper.jira:gh-sprint', customId: 10020 } },
      ]];
    }
    if (method === 'GET' && path === `${api}/status`) return [200, [{ id: '1', name: 'To Do' }, { id: '3', name: 'In Progress' }, { id: '5', name: 'Done' }]];
    if (method === 'GET' && path === `${api}/priority`) return [200, [{ id: '1', name: 'High' }, { id: '3', name: 'Medium' }]];
    if (method === 'GET' && path === `${api}/issueLinkType`) {
      return [200, { issueLinkTypes: [{ id: '10000', name: 'Blocks', inward: 'is blocked by', outward: 'blocks' }, { id: '10001', name: 'Relates', inward: 'relates to', outward: 'relates to' }] }];
    }
    if (method === 'POST' && path === `${api}/issueLink`) {
      const from = this.visible(user, body.outwardIssue?.key);
      const to = this.visible(user, body.inwardIssue?.key);
      if (!from || !to) return notFound;
      const type = { name: body.type.name, inward: 'is blocked by', outward: 'blocks' };
      const id = String(this.nextId++);
      from.fields.issuelinks.push({ id, type, outwardIssue: { key: to.key } });
      to.fields.issuelinks.push({ id, type, inwardIssue: { key: from.key } });
      this.links.push(body);
      return [201, null];
    }
    // Agile
    if (method === 'GET' && path === '/rest/agile/1.0/board') {
      const all = user.projects.map((key, i) => ({ id: i + 1, name: `${key} board`, type: 'scrum', location: { projectKey: key } }));
      const filtered = url.searchParams.get('projectKeyOrId') ? all.filter((b) => b.location.projectKey === url.searchParams.get('projectKeyOrId')) : all;
      const start = Number(url.searchParams.get('startAt') ?? 0);
      const max = Number(url.searchParams.get('maxResults') ?? 50);
      return [200, { startAt: start, maxResults: max, isLast: start + max >= filtered.length, values: filtered.slice(start, start + max) }];
    }
    if ((m = /^\/rest\/agile\/1\.0\/board\/(\d+)\/sprint$/.exec(path)) && method === 'GET') {
      const state = url.searchParams.get('state');
      const all = [...this.sprints.values()].filter((s) => s.board === Number(m![1]) && (!state || s.state === state));
      return [200, { startAt: 0, maxResults: 50, isLast: true, values: all.map((s) => ({ id: s.id, name: s.name, state: s.state, startDate: '2026-11-01T00:00:00.000Z', endDate: '2026-11-14T00:00:00.000Z', goal: 'Ship' })) }];
    }
    if ((m = /^\/rest\/agile\/1\.0\/sprint\/(\d+)\/issue$/.exec(path))) {
      const sprint = this.sprints.get(Number(m[1]));
      if (!sprint) return [404, { errorMessages: ['Sprint not found'] }];
      if (method === 'POST') {
        for (const key of body.issues as string[]) {
          for (const s of this.sprints.values()) s.issues = s.issues.filter((k) => k !== key);
          sprint.issues.push(key);
        }
        return [204, null];
      }
      const issues = sprint.issues.map((k) => this.visible(user, k)).filter(Boolean) as Json[];
      const fields = url.searchParams.get('fields')?.split(',') ?? null;
      return [200, { startAt: 0, maxResults: 50, total: issues.length, issues: issues.map((i) => this.pick(i, fields)) }];
    }
    if (method === 'POST' && path === '/rest/agile/1.0/backlog/issue') {
      for (const key of body.issues as string[]) for (const s of this.sprints.values()) s.issues = s.issues.filter((k) => k !== key);
      return [204, null];
    }
    return [404, { errorMessages: [`fake Jira has no ${method} ${path}`] }];
  }

  /** `fields` and `update: { field: [{ set }] }` as one map of new values. */
  private edits(body: Json): Json {
    const out: Json = { ...(body.fields ?? {}) };
    for (const [name, operations] of Object.entries((body.update ?? {}) as Record<string, Json[]>)) {
      for (const operation of operations) if ('set' in operation) out[name] = operation.set;
    }
    return out;
  }

  private transitions() {
    return [
      { id: '11', name: 'Start progress', to: { id: '3', name: 'In Progress' } },
      { id: '21', name: 'Done', to: { id: '5', name: 'Done' } },
    ];
  }

  private comment(issue: Json, user: FakeUser, body: unknown): Json {
    const comment = { id: String(this.nextId++), author: this.userJson(user), body, created: '2026-11-20T09:00:00.000+0000', updated: '2026-11-20T09:00:00.000+0000' };
    issue.fields.comment.comments.push(comment);
    issue.fields.comment.total = issue.fields.comment.comments.length;
    return comment;
  }
}
