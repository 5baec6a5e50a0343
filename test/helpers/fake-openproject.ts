import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { formFiles, MULTIPART, NOT_JSON, readBody, serveOnLoopback, stopServer } from './loopback.ts';

// An OpenProject on loopback for tests, following its API v3 documentation
// (https://www.openproject.org/docs/api/): HAL+JSON resources with `_links`, Basic auth with the
// user "apikey", collections paged by `pageSize` and a 1-based page number `offset`, filters as a
// JSON array of {name: {operator, values}}, Markdown texts as {format, raw, html}, and
// `lockVersion` required to change a work package (a stale one is 409). Requests that break the
// documented contract are recorded; takeViolations() says what, and the tests fail on any.
// Users see only the projects they are members of (an invisible resource is a 404).

type Json = Record<string, any>;

export interface FakeOpUser {
  id: number;
  login: string;
  name: string;
  apiKey: string;
  /** Identifiers of the projects this user is a member of. */
  projects: string[];
}

const STATUSES = [
  { id: 1, name: 'New', isClosed: false },
  { id: 7, name: 'In progress', isClosed: false },
  { id: 12, name: 'Closed', isClosed: true },
];
const PRIORITIES = [{ id: 8, name: 'Normal' }, { id: 9, name: 'High' }];
const TYPES = [{ id: 1, name: 'Task' }, { id: 2, name: 'Bug' }];
const SEVERITIES = [{ id: 31, value: 'Low' }, { id: 32, value: 'Critical' }];
// What a work package body may hold (these tests' subset of the documented properties).
const PROPERTIES = new Set(['lockVersion', 'subject', 'description', 'startDate', 'dueDate', 'estimatedTime', 'percentageDone', '_links', 'customField3']);
const LINKS = new Set(['status', 'type', 'priority', 'assignee', 'responsible', 'parent', 'project', 'version', 'customField4']);
const RELATION_TYPES = ['relates', 'duplicates', 'duplicated', 'blocks', 'blocked', 'precedes', 'follows', 'includes', 'partof', 'requires', 'required'];
const FILTERS: Record<string, string[]> = {
  work_packages: ['project', 'assignee', 'status', 'subject', 'updatedAt', 'id'],
  projects: ['name_and_identifier', 'active'],
  principals: ['type', 'any_name_attribute', 'member'],
  relations: ['involved', 'from', 'to', 'type'],
  time_entries: ['work_package', 'user', 'project'],
};
const OPERATORS = new Set(['=', '!', '~', '!~', 'o', 'c', '*', '!*', '<>d', '>t-', '<t-', '**']);
const DURATION = /^P(?:\d+(?:\.\d+)?D)?(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$/;

const error = (id: string, message: string, attribute?: string) => ({
  _type: 'Error',
  errorIdentifier: `urn:openproject-org:api:v3:errors:${id}`,
  message,
  ...(attribute ? { _embedded: { details: { attribute } } } : {}),
});

export class FakeOpenProject {
  readonly users: FakeOpUser[];
  readonly projects = new Map<string, { id: number; identifier: string; name: string; description: string }>();
  readonly workPackages = new Map<number, Json>();
  readonly activities: Json[] = [];
  readonly relations: Json[] = [];
  readonly timeEntries: Json[] = [];
  readonly attachments: { id: number; workPackage: number; fileName: string; contentType: string; data: Buffer; author: number }[] = [];
  /**
   * Answers unknown credentials as the anonymous user (who sees no project here) instead of 401,
   * as an instance allowing anonymous access does for a request without valid credentials.
   */
  anonymousAccess = false;
  /** The next work package search ignores its project filter (a tracker reading a query otherwise). */
  ignoreProjectFilterOnce = false;
  readonly requests: { method: string; path: string; query: URLSearchParams; body: unknown; user: string | null }[] = [];
  private readonly violations: string[] = [];
  /** Runs after a work package is read and before the next request (a concurrent edit, say). */
  onNextRequest: (() => void) | null = null;
  private server!: Server;
  private nextId = 100;
  url = '';

  constructor(users: FakeOpUser[]) {
    this.users = users;
  }

  async start(): Promise<this> {
    ({ server: this.server, url: this.url } = await serveOnLoopback((req, res) => void this.handle(req, res)));
    return this;
  }

  stop(): Promise<void> {
    return stopServer(this.server);
  }

  /** Requests that broke the documented contract since the last call. */
  takeViolations(): string[] {
    return this.violations.splice(0);
  }

  addProject(identifier: string, name: string): void {
    this.projects.set(identifier, { id: 10 + this.projects.size, identifier, name, description: `About ${name}` });
  }

  addWorkPackage(project: string, author: FakeOpUser, fields: Json = {}): Json {
    const p = this.projects.get(project)!;
    const id = this.nextId++;
    const wp: Json = {
      id,
      subject: `Work package ${id}`,
      description: { format: 'markdown', raw: '', html: '' },
      lockVersion: 0,
      createdAt: '2026-11-01T10:00:00Z',
      updatedAt: `2026-11-${String(10 + (this.workPackages.size % 18)).padStart(2, '0')}T10:00:00Z`,
      projectId: p.id,
      statusId: 1,
      typeId: 1,
      priorityId: 8,
      assigneeId: null,
      authorId: author.id,
      parentId: null,
      ...fields,
    };
    this.workPackages.set(id, wp);
    return wp;
  }

  // ---- representation ----

  private userLink(id: number | null) {
    const user = this.users.find((u) => u.id === id);
    return user ? { href: `/api/v3/users/${user.id}`, title: user.name } : { href: null };
  }

  private project(id: number) {
    return [...this.projects.values()].find((p) => p.id === id)!;
  }

  private wpJson(wp: Json): Json {
    const project = this.project(wp.projectId);
    const status = STATUSES.find((s) => s.id === wp.statusId)!;
    const children = [...this.workPackages.values()].filter((c) => c.parentId === wp.id);
    const parent = wp.parentId ? this.workPackages.get(wp.parentId) : null;
    return {
      _type: 'WorkPackage',
      id: wp.id,
      lockVersion: wp.lockVersion,
      subject: wp.subject,
      description: { format: 'markdown', raw: wp.description.raw, html: `<p>${wp.description.raw}</p>` },
      createdAt: wp.createdAt,
      updatedAt: wp.updatedAt,
      startDate: wp.startDate ?? null,
      customField3: wp.customField3 ?? null,
      _links: {
        customField4: wp.severity ? { href: `/api/v3/custom_options/${wp.severity.id}`, title: wp.severity.value } : { href: null },
        self: { href: `/api/v3/work_packages/${wp.id}`, title: wp.subject },
        project: { href: `/api/v3/projects/${project.id}`, title: project.name },
        status: { href: `/api/v3/statuses/${status.id}`, title: status.name },
        type: { href: `/api/v3/types/${wp.typeId}`, title: TYPES.find((t) => t.id === wp.typeId)!.name },
        priority: { href: `/api/v3/priorities/${wp.priorityId}`, title: PRIORITIES.find((p) => p.id === wp.priorityId)!.name },
        author: this.userLink(wp.authorId),
        assignee: this.userLink(wp.assigneeId),
        parent: parent ? { href: `/api/v3/work_packages/${parent.id}`, title: parent.subject } : { href: null },
        children: children.map((c) => ({ href: `/api/v3/work_packages/${c.id}`, title: c.subject })),
      },
    };
  }

  private collection(all: Json[], query: URLSearchParams): Json {
    const pageSize = Number(query.get('pageSize') ?? 20);
    const offset = Number(query.get('offset') ?? 1);
    const elements = all.slice((offset - 1) * pageSize, offset * pageSize);
    return { _type: 'Collection', total: all.length, count: elements.length, pageSize, offset, _embedded: { elements } };
  }

  // ---- the documented contract ----

  private checkRequest(method: string, url: URL, req: IncomingMessage, body: unknown): void {
    const where = `${method} ${url.pathname}`;
    const accept = req.headers.accept ?? '';
    if (!/application\/(hal\+)?json|\*\/\*/.test(accept)) this.violations.push(`${where}: Accept ${accept} is not JSON`);
    if (body !== undefined && body !== MULTIPART && !/^application\/json/.test(req.headers['content-type'] ?? '')) this.violations.push(`${where}: a body without content-type application/json`);
    for (const name of ['pageSize', 'offset']) {
      const value = url.searchParams.get(name);
      if (value !== null && !(/^\d+$/.test(value) && Number(value) >= 1)) this.violations.push(`${where}: ${name}=${value} is not a positive integer`);
    }
    const filters = url.searchParams.get('filters');
    if (filters !== null) {
      const resource = /^\/api\/v3\/(?:projects\/[^/]+\/)?(work_packages|projects|principals|relations|time_entries)$/.exec(url.pathname)?.[1];
      let parsed: unknown;
      try {
        parsed = JSON.parse(filters);
      } catch {
        parsed = undefined;
      }
      if (!Array.isArray(parsed)) this.violations.push(`${where}: filters is not a JSON array`);
      else {
        for (const filter of parsed as Json[]) {
          const keys = filter && typeof filter === 'object' ? Object.keys(filter) : [];
          const spec = keys.length === 1 ? filter[keys[0]!] : null;
          if (!spec || typeof spec.operator !== 'string' || !(spec.values === null || Array.isArray(spec.values))) {
            this.violations.push(`${where}: filter ${JSON.stringify(filter)} is not {name: {operator, values}}`);
            continue;
          }
          if (resource && !FILTERS[resource]!.includes(keys[0]!)) this.violations.push(`${where}: ${resource} has no filter ${keys[0]}`);
          if (!OPERATORS.has(spec.operator)) this.violations.push(`${where}: unknown operator ${spec.operator}`);
        }
      }
    }
    const sortBy = url.searchParams.get('sortBy');
    if (sortBy !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(sortBy);
      } catch {
        parsed = undefined;
      }
      if (!Array.isArray(parsed) || !parsed.every((s) => Array.isArray(s) && s.length === 2 && ['asc', 'desc'].includes(s[1]))) this.violations.push(`${where}: sortBy is not [[field, asc|desc], ...]`);
    }
    if (body && typeof body === 'object') this.checkBody(where, body as Json);
  }

  private checkBody(where: string, body: Json): void {
    if (/^(PATCH|POST) \/api\/v3\/(work_packages\/\d+|projects\/[^/]+\/work_packages)$/.test(where)) {
      for (const name of Object.keys(body)) if (!PROPERTIES.has(name)) this.violations.push(`${where}: a work package has no property ${name}`);
      for (const name of Object.keys((body._links ?? {}) as Json)) if (!LINKS.has(name)) this.violations.push(`${where}: a work package has no link ${name}`);
    }
    for (const [name, link] of Object.entries((body._links ?? {}) as Json)) {
      if (!link || typeof link !== 'object' || !(link.href === null || (typeof link.href === 'string' && link.href.startsWith('/api/v3/')))) {
        this.violations.push(`${where}: _links.${name} is not {href: "/api/v3/..." | null}`);
      }
    }
    for (const name of ['description', 'comment']) {
      if (name in body && (typeof body[name] !== 'object' || typeof body[name]?.raw !== 'string')) this.violations.push(`${where}: ${name} is not a formatted text {raw}`);
    }
  }

  // ---- handling ----

  private authenticate(req: IncomingMessage): FakeOpUser | null {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Basic ')) return null;
    const [user, key] = Buffer.from(header.slice(6), 'base64').toString().split(/:(.*)/s);
    if (user !== 'apikey') return null;
    return this.users.find((u) => u.apiKey === key) ?? null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { body, form } = await readBody(req);
    if (body === NOT_JSON) return this.send(res, 400, error('InvalidRequestBody', 'The request body was not a single JSON object.'));
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const user = this.authenticate(req);
    this.requests.push({ method, path: url.pathname, query: url.searchParams, body, user: user?.login ?? null });
    this.checkRequest(method, url, req, body);
    const hook = this.onNextRequest;
    this.onNextRequest = null;
    hook?.();
    if (!user && this.anonymousAccess && method === 'GET' && url.pathname !== '/api/v3/users/me') {
      return this.send(res, 200, this.collection([], url.searchParams));
    }
    if (!user) return this.send(res, 401, error('Unauthenticated', 'You did not provide the correct credentials.'));
    try {
      const bytes = this.attachmentContent(method, url, user);
      if (bytes) {
        res.writeHead(bytes.status, { 'content-type': bytes.type });
        return void res.end(bytes.data);
      }
      if (body === MULTIPART) {
        const [status, answer] = await this.upload(method, url, form!, user);
        return this.send(res, status, answer);
      }
      const [status, answer] = this.route(method, url, (body ?? {}) as Json, user);
      this.send(res, status, answer);
    } catch (thrown) {
      this.send(res, 500, error('InternalServerError', String((thrown as Error).message)));
    }
  }

  private attachmentJson(a: FakeOpenProject['attachments'][number]): Json {
    return {
      _type: 'Attachment',
      id: a.id,
      fileName: a.fileName,
      fileSize: a.data.length,
      contentType: a.contentType,
      description: { format: 'plain', raw: '', html: '' },
      createdAt: '2026-11-21T10:00:00Z',
      _links: {
        self: { href: `/api/v3/attachments/${a.id}`, title: a.fileName },
        author: this.userLink(a.author),
        container: { href: `/api/v3/work_packages/${a.workPackage}` },
        downloadLocation: { href: `/api/v3/attachments/${a.id}/content` },
      },
    };
  }

  addAttachment(workPackage: number, fileName: string, contentType: string, data: Buffer, author: FakeOpUser): Json {
    const attachment = { id: this.nextId++, workPackage, fileName, contentType, data, author: author.id };
    this.attachments.push(attachment);
    return this.attachmentJson(attachment);
  }

  private attachmentContent(method: string, url: URL, user: FakeOpUser): { status: number; type: string; data: Buffer | string } | null {
    const m = /^\/api\/v3\/attachments\/(\d+)\/content$/.exec(url.pathname);
    if (method !== 'GET' || !m) return null;
    const attachment = this.attachments.find((a) => a.id === Number(m[1]));
    if (!attachment || !this.visibleWp(user, String(attachment.workPackage))) return { status: 404, type: 'application/hal+json', data: JSON.stringify(error('NotFound', 'The requested resource could not be found.')) };
    return { status: 200, type: attachment.contentType, data: attachment.data };
  }

  /** POST /api/v3/work_packages/{id}/attachments: a "metadata" part (JSON with fileName) and a "file" part, as documented. */
  private async upload(method: string, url: URL, form: FormData, user: FakeOpUser): Promise<[number, unknown]> {
    const m = /^\/api\/v3\/work_packages\/(\d+)\/attachments$/.exec(url.pathname);
    if (method !== 'POST' || !m) {
      this.violations.push(`${method} ${url.pathname}: multipart is taken by the attachments resource only`);
      return [415, error('TypeNotSupported', 'Expected CONTENT-TYPE to be application/json')];
    }
    const wp = this.visibleWp(user, m[1]!);
    if (!wp) return [404, error('NotFound', 'The requested resource could not be found.')];
    const metadata = form.get('metadata');
    let fileName: unknown;
    try {
      fileName = JSON.parse(typeof metadata === 'string' ? metadata : metadata ? await metadata.text() : '').fileName;
    } catch {
      fileName = undefined;
    }
    const [file] = await formFiles(form, 'file');
    if (typeof fileName !== 'string' || !file) {
      this.violations.push(`POST ${url.pathname}: an upload needs a JSON "metadata" part with fileName and a "file" part`);
      return [400, error('InvalidRequestBody', 'The request could not be parsed as multipart with metadata and file.')];
    }
    return [200, this.addAttachment(wp.id, fileName, file.type || 'application/octet-stream', file.data, user)];
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/hal+json; charset=utf-8' });
    res.end(status === 204 ? '' : JSON.stringify(body));
  }

  private visibleProject(user: FakeOpUser, ref: string) {
    const project = [...this.projects.values()].find((p) => String(p.id) === ref || p.identifier === ref);
    return project && user.projects.includes(project.identifier) ? project : null;
  }

  private visibleWp(user: FakeOpUser, id: string): Json | null {
    const wp = this.workPackages.get(Number(id));
    return wp && user.projects.includes(this.project(wp.projectId).identifier) ? wp : null;
  }

  private filtersOf(url: URL): Json[] {
    return JSON.parse(url.searchParams.get('filters') ?? '[]') as Json[];
  }

  /** Applies a change body to a work package (the subset of properties these tests use). */
  private apply(wp: Json, body: Json, user: FakeOpUser): [number, unknown] | null {
    if ('subject' in body) {
      if (!String(body.subject ?? '').trim()) return [422, error('PropertyConstraintViolation', "Subject can't be blank.", 'subject')];
      wp.subject = body.subject;
    }
    if (body.description) wp.description = { format: 'markdown', raw: body.description.raw };
    if ('customField3' in body) wp.customField3 = body.customField3;
    if ('startDate' in body) wp.startDate = body.startDate;
    const links = (body._links ?? {}) as Json;
    const idIn = (link: Json) => (link.href === null ? null : Number(String(link.href).split('/').pop()));
    if (links.customField4) {
      const option = SEVERITIES.find((o) => o.id === idIn(links.customField4));
      if (links.customField4.href !== null && !option) return [422, error('PropertyConstraintViolation', 'Severity is not set to one of the allowed values.', 'customField4')];
      wp.severity = option ?? null;
    }
    if (links.status) wp.statusId = idIn(links.status);
    if (links.type) wp.typeId = idIn(links.type);
    if (links.priority) wp.priorityId = idIn(links.priority);
    if (links.assignee) {
      const id = idIn(links.assignee);
      const assignee = this.users.find((u) => u.id === id);
      if (id !== null && (!assignee || !assignee.projects.includes(this.project(wp.projectId).identifier))) {
        return [422, error('PropertyConstraintViolation', 'Assignee is not a member of this project.', 'assignee')];
      }
      wp.assigneeId = id;
    }
    if (links.parent) {
      const id = idIn(links.parent);
      if (id !== null && !this.visibleWp(user, String(id))) return [422, error('PropertyConstraintViolation', 'Parent does not exist.', 'parent')];
      wp.parentId = id;
    }
    return null;
  }

  /** A work package schema: its fields, with their allowed values as a form's schema has them. */
  private schemaJson(self: string, withAllowed: boolean, status: Json | null = null): Json {
    const allowed = (values: Json[]) => (withAllowed ? { _embedded: { allowedValues: values } } : {});
    return {
      _type: 'Schema',
      lockVersion: { type: 'Integer', name: 'Lock Version', required: true, writable: false },
      subject: { type: 'String', name: 'Subject', required: true, writable: true },
      description: { type: 'Formattable', name: 'Description', required: false, writable: true },
      priority: { type: 'Priority', name: 'Priority', required: false, writable: true, location: '_links', ...allowed(PRIORITIES.map((p) => ({ _type: 'Priority', ...p, _links: { self: { href: `/api/v3/priorities/${p.id}`, title: p.name } } }))) },
      customField3: { type: 'String', name: 'Customer', required: false, writable: true },
      customField4: { type: 'CustomOption', name: 'Severity', required: false, writable: true, location: '_links', ...allowed(SEVERITIES.map((o) => ({ _type: 'CustomOption', id: o.id, value: o.value, _links: { self: { href: `/api/v3/custom_options/${o.id}`, title: o.value } } }))) },
      customField5: { type: 'User', name: 'Reviewer', required: false, writable: true, location: '_links' },
      startDate: { type: 'Date', name: 'Start date', required: false, writable: true },
      createdAt: { type: 'DateTime', name: 'Created on', required: true, writable: false },
      ...(status ? { status } : {}),
      _links: { self: { href: self } },
    };
  }

  private route(method: string, url: URL, body: Json, user: FakeOpUser): [number, unknown] {
    const path = url.pathname;
    const q = url.searchParams;
    const notFound: [number, unknown] = [404, error('NotFound', 'The requested resource could not be found.')];
    let m: RegExpExecArray | null;
    const userJson = (u: FakeOpUser) => ({ _type: 'User', id: u.id, name: u.name, login: u.login, _links: { self: { href: `/api/v3/users/${u.id}`, title: u.name } } });

    if (method === 'GET' && path === '/api/v3/users/me') return [200, userJson(user)];
    if (method === 'GET' && path === '/api/v3/statuses') return [200, this.collection(STATUSES.map((s) => ({ _type: 'Status', ...s })), new URLSearchParams({ pageSize: '100' }))];
    if (method === 'GET' && path === '/api/v3/priorities') return [200, this.collection(PRIORITIES.map((p) => ({ _type: 'Priority', ...p })), new URLSearchParams({ pageSize: '100' }))];
    if (method === 'GET' && path === '/api/v3/projects') {
      const text = this.filtersOf(url).find((f) => f.name_and_identifier)?.name_and_identifier.values[0]?.toLowerCase();
      const all = [...this.projects.values()].filter((p) => user.projects.includes(p.identifier) && (!text || `${p.identifier} ${p.name}`.toLowerCase().includes(text)));
      return [200, this.collection(all.map((p) => ({ _type: 'Project', ...p, description: { format: 'markdown', raw: p.description } })), q)];
    }
    if ((m = /^\/api\/v3\/projects\/([^/]+)(\/.*)?$/.exec(path))) {
      const project = this.visibleProject(user, decodeURIComponent(m[1]!));
      if (!project) return notFound;
      const rest = m[2] ?? '';
      if (method === 'GET' && rest === '') return [200, { _type: 'Project', ...project, description: { format: 'markdown', raw: project.description } }];
      if (method === 'GET' && rest === '/types') return [200, this.collection(TYPES.map((t) => ({ _type: 'Type', ...t })), new URLSearchParams({ pageSize: '100' }))];
      if (method === 'GET' && rest === '/available_assignees') {
        return [200, this.collection(this.users.filter((u) => u.projects.includes(project.identifier)).map(userJson), new URLSearchParams({ pageSize: '100' }))];
      }
      if (method === 'POST' && rest === '/work_packages/form') {
        const typeId = Number(String(body._links?.type?.href ?? '').split('/').pop());
        if (!TYPES.some((t) => t.id === typeId)) this.violations.push(`POST ${path}: a new work package's form without a type link`);
        return [200, { _type: 'Form', _embedded: { payload: {}, schema: this.schemaJson(`/api/v3/work_packages/schemas/${project.id}-${typeId}`, true), validationErrors: {} } }];
      }
      if (method === 'POST' && rest === '/work_packages') {
        if (!body._links?.type) return [422, error('PropertyConstraintViolation', "Type can't be blank.", 'type')];
        const wp = this.addWorkPackage(project.identifier, user, { subject: '' });
        const refused = this.apply(wp, body, user) ?? (!String(wp.subject).trim() ? [422, error('PropertyConstraintViolation', "Subject can't be blank.", 'subject')] as [number, unknown] : null);
        if (refused) {
          this.workPackages.delete(wp.id);
          return refused;
        }
        return [201, this.wpJson(wp)];
      }
      return notFound;
    }
    if (method === 'GET' && path === '/api/v3/work_packages') {
      let all = [...this.workPackages.values()].filter((wp) => user.projects.includes(this.project(wp.projectId).identifier));
      for (const filter of this.filtersOf(url)) {
        const [name, spec] = Object.entries(filter)[0] as [string, Json];
        const values = (spec.values ?? []) as string[];
        if (name === 'project' && !this.ignoreProjectFilterOnce) all = all.filter((wp) => values.includes(String(wp.projectId)));
        if (name === 'assignee') all = all.filter((wp) => (spec.operator === '!*' ? wp.assigneeId === null : values.map((v) => (v === 'me' ? String(user.id) : v)).includes(String(wp.assigneeId))));
        if (name === 'status') {
          const closed = (wp: Json) => STATUSES.find((s) => s.id === wp.statusId)!.isClosed;
          all = all.filter((wp) => (spec.operator === 'o' ? !closed(wp) : spec.operator === 'c' ? closed(wp) : values.includes(String(wp.statusId))));
        }
        if (name === 'subject') all = all.filter((wp) => String(wp.subject).toLowerCase().includes(values[0]!.toLowerCase()));
        if (name === 'updatedAt') all = all.filter((wp) => !values[0] || wp.updatedAt >= values[0]);
      }
      this.ignoreProjectFilterOnce = false;
      all.sort((a, b) => String(b.updatedAt).localeCompare(String(a.updatedAt)) || b.id - a.id);
      return [200, this.collection(all.map((wp) => this.wpJson(wp)), q)];
    }
    if ((m = /^\/api\/v3\/work_packages\/schemas\/(\d+)-(\d+)$/.exec(path)) && method === 'GET') {
      if (!this.visibleProject(user, m[1]!)) return notFound;
      // As OpenProject's: the standalone schema embeds no allowed values (its forms do).
      return [200, this.schemaJson(path, false)];
    }
    if ((m = /^\/api\/v3\/work_packages\/(\d+)(\/.*)?$/.exec(path))) {
      const wp = this.visibleWp(user, m[1]!);
      if (!wp) return notFound;
      const rest = m[2] ?? '';
      if (method === 'GET' && rest === '') return [200, this.wpJson(wp)];
      if (method === 'PATCH' && rest === '') {
        if (typeof body.lockVersion !== 'number') {
          this.violations.push(`PATCH ${path}: no lockVersion`);
          return [422, error('PropertyConstraintViolation', 'Lock version is missing.', 'lockVersion')];
        }
        if (body.lockVersion !== wp.lockVersion) return [409, error('UpdateConflict', 'Your changes could not be saved, because the work package was changed by someone else in the meantime.')];
        const before = { ...wp };
        const refused = this.apply(wp, body, user);
        if (refused) {
          Object.assign(wp, before);
          return refused;
        }
        wp.lockVersion++;
        wp.updatedAt = '2026-11-30T10:00:00Z';
        if (before.statusId !== wp.statusId) {
          this.activity(wp.id, user, null, [`Status changed from ${STATUSES.find((s) => s.id === before.statusId)!.name} to ${STATUSES.find((s) => s.id === wp.statusId)!.name}`]);
        }
        return [200, this.wpJson(wp)];
      }
      if (method === 'DELETE' && rest === '') {
        this.workPackages.delete(wp.id);
        return [204, null];
      }
      if (method === 'POST' && rest === '/form') {
        if (typeof body.lockVersion !== 'number') this.violations.push(`POST ${path}: a form without lockVersion`);
        const allowed = STATUSES.filter((s) => s.id !== wp.statusId);
        const status = { type: 'Status', writable: true, _embedded: { allowedValues: allowed.map((s) => ({ _type: 'Status', ...s, _links: { self: { href: `/api/v3/statuses/${s.id}`, title: s.name } } })) } };
        return [200, { _type: 'Form', _embedded: { payload: this.wpJson(wp), schema: this.schemaJson(`/api/v3/work_packages/schemas/${wp.projectId}-${wp.typeId}`, true, status), validationErrors: {} } }];
      }
      if (method === 'GET' && rest === '/activities') {
        return [200, this.collection(this.activities.filter((a) => a.workPackage === wp.id).map((a) => this.activityJson(a)), new URLSearchParams({ pageSize: '1000' }))];
      }
      if (method === 'POST' && rest === '/activities') {
        if (!body.comment?.raw) return [422, error('PropertyConstraintViolation', "Comment can't be blank.", 'comment')];
        return [201, this.activityJson(this.activity(wp.id, user, body.comment.raw, []))];
      }
      if (method === 'GET' && rest === '/attachments') {
        return [200, this.collection(this.attachments.filter((a) => a.workPackage === wp.id).map((a) => this.attachmentJson(a)), new URLSearchParams({ pageSize: '1000' }))];
      }
      if (method === 'POST' && rest === '/relations') {
        if (!RELATION_TYPES.includes(body.type)) return [422, error('PropertyConstraintViolation', 'Type is not included in the list.', 'type')];
        const to = this.visibleWp(user, String(body._links?.to?.href ?? '').split('/').pop()!);
        if (!to) return [422, error('PropertyConstraintViolation', 'To does not exist.', 'to')];
        const relation = { id: this.nextId++, type: body.type, from: wp.id, to: to.id, description: body.description ?? null };
        this.relations.push(relation);
        return [201, this.relationJson(relation)];
      }
      return notFound;
    }
    if ((m = /^\/api\/v3\/attachments\/(\d+)$/.exec(path)) && method === 'DELETE') {
      const attachment = this.attachments.find((a) => a.id === Number(m![1]));
      if (!attachment || !this.visibleWp(user, String(attachment.workPackage))) return notFound;
      this.attachments.splice(this.attachments.indexOf(attachment), 1);
      return [204, null];
    }
    if ((m = /^\/api\/v3\/activities\/(\d+)$/.exec(path)) && method === 'GET') {
      const activity = this.activities.find((a) => a.id === Number(m![1]));
      if (!activity || !this.visibleWp(user, String(activity.workPackage))) return notFound;
      return [200, this.activityJson(activity)];
    }
    if ((m = /^\/api\/v3\/activities\/(\d+)$/.exec(path)) && method === 'PATCH') {
      const activity = this.activities.find((a) => a.id === Number(m![1]));
      if (!activity || !this.visibleWp(user, String(activity.workPackage))) return notFound;
      if (activity.user !== user.id) return [403, error('MissingPermission', 'You are not authorized to access this resource.')];
      activity.comment = body.comment.raw;
      activity.updatedAt = '2026-11-30T11:00:00Z';
      return [200, this.activityJson(activity)];
    }
    if (method === 'GET' && path === '/api/v3/relations') {
      const involved = this.filtersOf(url).find((f) => f.involved)?.involved.values[0];
      const all = this.relations.filter((r) => String(r.from) === involved || String(r.to) === involved).filter((r) => this.visibleWp(user, String(r.from)) && this.visibleWp(user, String(r.to)));
      return [200, this.collection(all.map((r) => this.relationJson(r)), q)];
    }
    if (method === 'GET' && path === '/api/v3/principals') {
      const text = this.filtersOf(url).find((f) => f.any_name_attribute)?.any_name_attribute.values[0]?.toLowerCase() ?? '';
      const visible = this.users.filter((u) => u.projects.some((p) => user.projects.includes(p)) && `${u.name} ${u.login}`.toLowerCase().includes(text));
      return [200, this.collection(visible.map(userJson), q)];
    }
    if (method === 'GET' && path === '/api/v3/time_entries') {
      const wpId = this.filtersOf(url).find((f) => f.work_package)?.work_package.values[0];
      const all = this.timeEntries.filter((t) => String(t.workPackage) === wpId && this.visibleWp(user, String(t.workPackage)));
      return [200, this.collection(all.map((t) => this.timeEntryJson(t)), q)];
    }
    if (method === 'POST' && path === '/api/v3/time_entries') {
      const wp = this.visibleWp(user, String(body._links?.workPackage?.href ?? '').split('/').pop()!);
      if (!wp) return [422, error('PropertyConstraintViolation', 'Work package is invalid.', 'workPackage')];
      if (typeof body.hours !== 'string' || !DURATION.test(body.hours)) {
        this.violations.push(`POST ${path}: hours ${JSON.stringify(body.hours)} is not an ISO 8601 duration`);
        return [422, error('PropertyConstraintViolation', 'Hours is invalid.', 'hours')];
      }
      if (!/^\d{4}-\d{2}-\d{2}$/.test(body.spentOn ?? '')) this.violations.push(`POST ${path}: spentOn is not a date`);
      const entry = { id: this.nextId++, workPackage: wp.id, user: user.id, hours: body.hours, spentOn: body.spentOn, comment: body.comment?.raw ?? '' };
      this.timeEntries.push(entry);
      return [201, this.timeEntryJson(entry)];
    }
    return notFound;
  }

  private activity(workPackage: number, user: FakeOpUser, comment: string | null, details: string[]): Json {
    const activity = { id: this.nextId++, workPackage, user: user.id, comment, details, createdAt: `2026-11-20T10:${String(this.activities.length).padStart(2, '0')}:00Z`, updatedAt: null as string | null };
    this.activities.push(activity);
    return activity;
  }

  private activityJson(a: Json): Json {
    return {
      _type: a.comment ? 'Activity::Comment' : 'Activity',
      id: a.id,
      comment: { format: 'markdown', raw: a.comment ?? '', html: '' },
      details: (a.details as string[]).map((raw) => ({ format: 'custom', raw, html: raw })),
      createdAt: a.createdAt,
      updatedAt: a.updatedAt ?? a.createdAt,
      _links: { self: { href: `/api/v3/activities/${a.id}` }, workPackage: { href: `/api/v3/work_packages/${a.workPackage}` }, user: this.userLink(a.user) },
    };
  }

  private relationJson(r: Json): Json {
    return { _type: 'Relation', id: r.id, type: r.type, description: r.description, _links: { self: { href: `/api/v3/relations/${r.id}` }, from: { href: `/api/v3/work_packages/${r.from}` }, to: { href: `/api/v3/work_packages/${r.to}` } } };
  }

  private timeEntryJson(t: Json): Json {
    return {
      _type: 'TimeEntry',
      id: t.id,
      hours: t.hours,
      spentOn: t.spentOn,
      comment: { format: 'plain', raw: t.comment, html: t.comment },
      _links: { self: { href: `/api/v3/time_entries/${t.id}` }, workPackage: { href: `/api/v3/work_packages/${t.workPackage}` }, user: this.userLink(t.user) },
    };
  }
}
