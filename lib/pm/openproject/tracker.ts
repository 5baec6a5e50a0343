import { invalid, OpError } from '../../errors.ts';
import { numberedKey } from '../numbered-key.ts';
import type { UpstreamHttp, UpstreamMethod, QueryValue } from '../http.ts';
import { nullIfUnseen, TrackerError, unsupported } from '../errors.ts';
import { truncate } from '../text/markdown.ts';
import { noAgile, type AgileTools } from '../no-agile.ts';
import { hoursOf } from '../duration.ts';
import { attachmentOf, multipartBody, refuseOversize } from '../attachments.ts';
import { confinementBreached, notWithinConfinement } from '../confinement.ts';
import {
  decodeOffset, encodeOffset, slicePage,
  type Account, type Attachment, type AttachmentUpload, type Comment, type FieldInfo, type Issue, type IssueInclude, type IssueInput, type IssueLink, type IssueSearch, type LinkType,
  type Named, type Page, type PageRequest, type Project, type Tracker, type Transition, type TransitionInput, type Worklog,
} from '../provider.ts';

// OpenProject's API v3 (HAL+JSON; Basic auth with the user "apikey" and the API key as password).
// Issue keys are work package ids ("42" or "#42"); texts are Markdown already; links between
// resources are `_links.<name>.href`. Changing a work package needs its current lockVersion.

type Json = Record<string, any>;

const LABEL = 'OpenProject';
const API = '/api/v3';
const DESCRIPTION_MAX = 4000;
const COMMENT_MAX = 2000;
const RELATION_TYPES: LinkType[] = [
  { id: 'relates', name: 'relates', inward: 'related to', outward: 'related to' },
  { id: 'duplicates', name: 'duplicates', inward: 'duplicated by', outward: 'duplicates' },
  { id: 'blocks', name: 'blocks', inward: 'blocked by', outward: 'blocks' },
  { id: 'precedes', name: 'precedes', inward: 'follows', outward: 'precedes' },
  { id: 'includes', name: 'includes', inward: 'part of', outward: 'includes' },
  { id: 'requires', name: 'requires', inward: 'required by', outward: 'requires' },
];

const workPackageId = (key: string, field = 'key') => numberedKey(key, field, 'OpenProject work packages');

// Types a field takes as a plain value; others are resources, set as links to an allowed value.
const SCALAR_TYPES = new Set(['String', 'Text', 'Integer', 'Float', 'Boolean', 'Date', 'DateTime', 'Duration', 'Formattable']);

// Properties naming other work packages (with their subjects): shown through include, never raw to
// a caller confined by project bindings.
const OTHER_WORK_PACKAGES = new Set(['parent', 'children', 'ancestors', 'relations']);

/** A work package's value of a property: its own, or the title of its link of that name. */
function propertyValue(raw: Json, property: string): unknown {
  const links = raw._links ?? {};
  return (Object.hasOwn(raw, property) ? raw[property] : null) ?? (Object.hasOwn(links, property) ? titleOf(links[property]) : null) ?? null;
}

/** The schema's fields (property, spec) whose name is this one, case-insensitively. */
function fieldsNamed(schema: Json, name: string): [string, Json][] {
  return (Object.entries(schema) as [string, Json][]).filter(([key, spec]) => !key.startsWith('_') && spec && typeof spec === 'object' && String(spec.name ?? '').toLowerCase() === name.toLowerCase());
}

/** Refuses a field to return that is no field (`_links`, `_embedded`) or, to a confined caller, names other work packages. */
function requireReadable(property: string, asked: string, confined: boolean): void {
  if (property.startsWith('_')) throw invalid('fields', `${asked} is not a field of a work package`);
  if (confined && OTHER_WORK_PACKAGES.has(property)) throw invalid('fields', `${asked} names other work packages, which may be in projects you may not read; use include (links, subtasks) instead`);
}

const href = (path: string) => ({ href: `${API}${path}` });
/** The id at the end of a HAL link's href (`/api/v3/statuses/7` -> "7"). */
const idOf = (link: Json | null | undefined) => (typeof link?.href === 'string' ? link.href.split('/').pop()! : null);
const titleOf = (link: Json | null | undefined) => (link?.href ? (link.title ?? null) : null);

/** OpenProject's error: { errorIdentifier, message, _embedded: { details: { attribute } | errors: [...] } }. */
function openProjectError(status: number, body: unknown): TrackerError {
  if (!body || typeof body !== 'object') return new TrackerError(status, []);
  const b = body as Json;
  const errors: Json[] = Array.isArray(b._embedded?.errors) ? b._embedded.errors : [b];
  const fieldErrors: Record<string, string> = {};
  for (const error of errors) {
    const attribute = error._embedded?.details?.attribute;
    if (typeof attribute === 'string' && typeof error.message === 'string') fieldErrors[attribute] = error.message;
  }
  return new TrackerError(status, typeof b.message === 'string' ? [b.message] : [], fieldErrors);
}

/** Filters as OpenProject takes them: a JSON array of {name: {operator, values}}. */
type Filter = Record<string, { operator: string; values: string[] }>;

/** Hours as the ISO 8601 duration OpenProject wants ("PT2H30M"). */
function isoDuration(hours: number): string {
  const minutes = Math.round(hours * 60);
  return `PT${Math.floor(minutes / 60) ? `${Math.floor(minutes / 60)}H` : ''}${minutes % 60 ? `${minutes % 60}M` : ''}` || 'PT0M';
}

/** OpenProject's ISO 8601 durations ("PT2H30M", "P1DT2H") as seconds. */
function secondsOf(duration: unknown): number | null {
  const match = typeof duration === 'string' ? /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(duration) : null;
  if (!match) return null;
  const [, d, h, m, s] = match.map((part) => Number(part ?? 0));
  return Math.round(d! * 86400 + h! * 3600 + m! * 60 + s!);
}

/** An activity detail ("Status changed from New to In progress", "Assignee set to Bob") as a change. */
function changeOf(text: string): { field: string; from: string | null; to: string | null } {
  const changed = /^(.+?) changed from (.*) to (.*)$/.exec(text);
  if (changed) return { field: changed[1]!, from: changed[2]!, to: changed[3]! };
  const set = /^(.+?) set to (.*)$/.exec(text);
  if (set) return { field: set[1]!, from: null, to: set[2]! };
  return { field: 'change', from: null, to: text };
}

export class OpenProjectTracker implements Tracker {
  readonly provider = 'openproject' as const;
  private readonly http: UpstreamHttp;
  private readonly baseUrl: string;
  private readonly authorization: string;
  private me: Account | null = null;

  constructor(http: UpstreamHttp, baseUrl: string, apiKey: string) {
    this.http = http;
    this.baseUrl = baseUrl;
    this.authorization = `Basic ${Buffer.from(`apikey:${apiKey}`).toString('base64')}`;
  }

  private async call<T = Json>(method: UpstreamMethod, path: string, options: { query?: Record<string, QueryValue>; body?: unknown; raw?: { contentType: string; data: Buffer }; maxBinaryBytes?: number } = {}): Promise<T> {
    const response = await this.http.send({
      method,
      url: `${this.baseUrl}${API}${path}`,
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.raw ? { raw: options.raw } : {}),
      ...(options.maxBinaryBytes ? { binary: true, maxBodyBytes: options.maxBinaryBytes } : {}),
      headers: { authorization: this.authorization, accept: options.maxBinaryBytes ? '*/*' : 'application/hal+json' },
    });
    if (response.status >= 400) throw openProjectError(response.status, response.body);
    return response.body as T;
  }

  /** A collection page: OpenProject pages by page number (`offset`, 1-based) and `pageSize`. */
  private async collection(path: string, page: PageRequest, query: Record<string, QueryValue> = {}): Promise<{ elements: Json[]; startAt: number; total: number }> {
    const startAt = decodeOffset(page.cursor);
    // A cursor always lands on a page boundary of its own limit; another limit re-reads from page 1.
    const aligned = startAt % page.limit === 0;
    const pageSize = aligned ? page.limit : startAt + page.limit;
    const result = await this.call('GET', path, { query: { ...query, pageSize, offset: aligned ? startAt / page.limit + 1 : 1 } });
    const all = (result._embedded?.elements ?? []) as Json[];
    if (!all.length) await this.confirmCredentials();
    return { elements: aligned ? all : all.slice(startAt), startAt, total: Number(result.total ?? all.length) };
  }

  private page<T>(elements: T[], startAt: number, total: number): Page<T> {
    const next = startAt + elements.length;
    return { items: elements, nextCursor: elements.length && next < total ? encodeOffset(next) : null, total };
  }

  private account(link: Json | null | undefined): Account | null {
    if (!link?.href) return null;
    return { id: idOf(link)!, name: String(link.title ?? idOf(link)) };
  }

  private user(raw: Json): Account {
    return { id: String(raw.id), name: String(raw.name ?? raw.login ?? raw.id), ...(raw.email ? { email: String(raw.email) } : {}) };
  }

  async whoami(): Promise<Account> {
    if (!this.me) this.me = this.user(await this.call('GET', '/users/me'));
    return this.me;
  }

  // ---- issues (work packages) ----

  private issueUrl(id: string | number): string {
    return `${this.baseUrl}/work_packages/${id}`;
  }

  private issue(raw: Json, fields: string[] | null = null, withDescription = false): Issue {
    const links = raw._links ?? {};
    const issue: Issue = {
      key: String(raw.id),
      id: String(raw.id),
      url: this.issueUrl(raw.id),
      summary: String(raw.subject ?? ''),
      status: titleOf(links.status),
      type: titleOf(links.type),
      priority: titleOf(links.priority),
      assignee: this.account(links.assignee),
      reporter: this.account(links.author),
      project: titleOf(links.project),
      parent: idOf(links.parent),
      labels: [],
      created: raw.createdAt ?? null,
      updated: raw.updatedAt ?? null,
      description: withDescription ? truncate(String(raw.description?.raw ?? ''), DESCRIPTION_MAX) : null,
    };
    const extra = (fields ?? []).filter((name) => !Object.hasOwn(issue, name));
    if (extra.length) issue.fields = Object.fromEntries(extra.map((name) => [name, propertyValue(raw, name)]));
    return issue;
  }

  private async filters(search: IssueSearch): Promise<Filter[]> {
    if (search.query) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(search.query);
      } catch {
        parsed = null;
      }
      const shaped = (filter: unknown) => {
        if (!filter || typeof filter !== 'object' || Array.isArray(filter) || Object.keys(filter).length !== 1) return false;
        const spec = Object.values(filter)[0] as Json | null;
        return !!spec && typeof spec === 'object' && typeof spec.operator === 'string' && (spec.values === null || Array.isArray(spec.values));
      };
      if (!Array.isArray(parsed) || !parsed.every(shaped)) throw invalid('query', 'for OpenProject, query is its filter JSON: an array of {name: {operator, values}}, e.g. [{"status":{"operator":"o","values":[]}}]; or use project, assignee, status, text and updatedSince');
      return parsed as Filter[];
    }
    const filters: Filter[] = [];
    if (search.project) filters.push({ project: { operator: '=', values: [await this.projectId(search.project)] } });
    if (search.assignee) {
      if (search.assignee === 'none') filters.push({ assignee: { operator: '!*', values: [] } });
      else filters.push({ assignee: { operator: '=', values: [search.assignee === 'me' ? 'me' : await this.userId(search.assignee, 'assignee', search.project)] } });
    }
    if (search.status) {
      const s = search.status.toLowerCase();
      if (s === 'open') filters.push({ status: { operator: 'o', values: [] } });
      else if (s === 'closed') filters.push({ status: { operator: 'c', values: [] } });
      else filters.push({ status: { operator: '=', values: [await this.named('/statuses', search.status, 'status')] } });
    }
    if (search.text) filters.push({ subject: { operator: '~', values: [search.text] } });
    if (search.updatedSince) {
      const date = new Date(search.updatedSince);
      if (Number.isNaN(date.getTime())) throw invalid('updated_since', 'must be an ISO date such as 2026-11-01');
      filters.push({ updatedAt: { operator: '<>d', values: [date.toISOString(), ''] } });
    }
    return filters;
  }

  async searchIssues(search: IssueSearch): Promise<Page<Issue>> {
    for (const name of search.fields ?? []) requireReadable(name, name, search.confineTo !== undefined);
    let confinedIds: Set<string> | null = null;
    let filters: Filter[];
    if (search.confineTo) {
      // The caller's own filters, ANDed with the confinement, may not name projects themselves.
      const own = await this.filters({ ...search, project: undefined });
      if (own.some((filter) => Object.keys(filter).some((name) => /project/i.test(name)))) {
        throw invalid('query', 'may not filter by project: your searches are confined to the tracker projects you may read (give project instead)');
      }
      const asked = search.project ? await this.projectId(search.project).catch(nullIfUnseen) : null;
      if (search.project && (asked === null || !search.confineTo.includes(asked))) throw notWithinConfinement(search.project, search.confineTo);
      confinedIds = new Set(asked ? [asked] : search.confineTo);
      filters = [...own, { project: { operator: '=', values: [...confinedIds] } }];
    } else filters = await this.filters(search);
    // An explicit (possibly empty) filter list: OpenProject otherwise shows open work packages only.
    const query = { filters: JSON.stringify(filters), sortBy: JSON.stringify([['updatedAt', 'desc']]) };
    const { elements, startAt, total } = await this.collection('/work_packages', search, query);
    if (confinedIds && elements.some((raw) => !confinedIds.has(String(idOf(raw._links?.project))))) throw confinementBreached(LABEL);
    return this.page(elements.map((raw) => this.issue(raw, search.fields ?? null)), startAt, total);
  }

  /**
   * An instance open to anonymous users answers unknown credentials as the anonymous user: often
   * an empty collection. An empty one is returned only once /users/me confirms the credentials.
   */
  private async confirmCredentials(): Promise<void> {
    this.me = null;
    await this.whoami();
  }

  async bindingProjectOfIssue(key: string, options: { field?: string } = {}): Promise<string> {
    return String(idOf((await this.workPackage(key, options.field))._links?.project));
  }

  async bindingProjectOf(project: string): Promise<string> {
    return this.projectId(project);
  }

  private workPackage(key: string, field = 'key'): Promise<Json> {
    return this.call('GET', `/work_packages/${workPackageId(key, field)}`);
  }

  async getIssue(key: string, options: { fields?: string[] | undefined; include: IssueInclude[]; confined?: boolean }): Promise<Issue> {
    const raw = await this.workPackage(key);
    const issue = this.issue(raw, null, true);
    if (options.fields?.length) issue.fields = await this.requestedFields(raw, options.fields, options.confined ?? false);
    const id = String(raw.id);
    if (options.include.includes('comments') || options.include.includes('history')) {
      const activities = await this.activities(id);
      if (options.include.includes('comments')) issue.comments = activities.filter((a) => a.comment?.raw).map((a) => this.comment(a));
      if (options.include.includes('history')) {
        issue.history = activities
          .filter((a) => (a.details ?? []).length)
          .map((a) => ({ at: String(a.createdAt), author: titleOf(a._links?.user), changes: (a.details as Json[]).map((d) => changeOf(String(d.raw ?? ''))) }));
      }
    }
    if (options.include.includes('transitions')) issue.transitions = await this.allowedStatuses(raw);
    if (options.include.includes('links')) issue.links = await this.relations(id);
    if (options.include.includes('subtasks')) {
      issue.subtasks = ((raw._links?.children ?? []) as Json[]).map((child) => ({ key: idOf(child)!, summary: String(child.title ?? ''), status: null }));
    }
    return issue;
  }

  /** Further fields of a work package, keyed as asked: by property, or by name through its schema (null when it has none such). */
  private async requestedFields(raw: Json, names: readonly string[], confined: boolean): Promise<Record<string, unknown>> {
    const links = raw._links ?? {};
    const out: Record<string, unknown> = {};
    for (const name of names) {
      requireReadable(name, name, confined);
      let property: string | null = Object.hasOwn(raw, name) || Object.hasOwn(links, name) ? name : null;
      const project = idOf(links.project);
      const type = idOf(links.type);
      if (!property && project && type) {
        const named = fieldsNamed(await this.schema(project, type), name);
        property = named.length === 1 ? named[0]![0] : null;
      }
      if (property) requireReadable(property, name, confined);
      out[name] = property ? propertyValue(raw, property) : null;
    }
    return out;
  }

  private async links(input: IssueInput, project: string | undefined): Promise<Json> {
    const links: Json = {};
    if (input.type !== undefined) {
      if (!project) throw invalid('type', 'changing the type needs the work package\'s project');
      links.type = href(`/types/${await this.named(`/projects/${project}/types`, input.type, 'type')}`);
    }
    if (input.priority !== undefined) links.priority = href(`/priorities/${await this.named('/priorities', input.priority, 'priority')}`);
    if (input.assignee !== undefined) links.assignee = href(`/users/${await this.userId(input.assignee, 'assignee', project)}`);
    if (input.parent !== undefined) links.parent = href(`/work_packages/${workPackageId(input.parent, 'parent')}`);
    return links;
  }

  /** The work package schema of a project and type (its fields by property, no allowed values), once per call. */
  private readonly schemas = new Map<string, Promise<Json>>();
  private schema(projectId: string, typeId: string): Promise<Json> {
    const key = `${projectId}-${typeId}`;
    let found = this.schemas.get(key);
    if (!found) this.schemas.set(key, (found = this.call('GET', `/work_packages/schemas/${encodeURIComponent(key)}`)));
    return found;
  }

  /** The schema's property for a field given by property (customField3, startDate) or by name (Customer, "Start date"). */
  private propertyOf(schema: Json, name: string): [string, Json] {
    const fields = Object.entries(schema).filter(([key, spec]) => !key.startsWith('_') && spec && typeof spec === 'object') as [string, Json][];
    const exact = fields.find(([key]) => key === name);
    if (exact) return exact;
    const named = fieldsNamed(schema, name);
    if (named.length === 1) return named[0]!;
    throw invalid(`fields.${name}`, named.length
      ? `names several fields (${named.map(([key]) => key).join(', ')}); give one by property`
      : `is no field of this work package's form (fields: ${fields.filter(([, spec]) => spec.writable).map(([key, spec]) => `${spec.name ?? key} (${key})`).join(', ') || 'none'})`);
  }

  /** The schema of a work package form (it holds the allowed values; the standalone schema does not). */
  private async formSchema(path: string, body: Json): Promise<Json> {
    const form = await this.call('POST', path, { body });
    return (form._embedded?.schema ?? {}) as Json;
  }

  /**
   * `fields` as OpenProject takes them, from its form's schema: values of plain fields as given,
   * a field holding a resource (a list option, a user, a version) from one of its allowed values
   * by name, as a link. Read-only and unknown fields, fields naming other work packages or
   * projects, and resources without allowed values are refused on their name.
   */
  private async fieldsBody(fields: Record<string, unknown>, formSchema: (() => Promise<Json>) | undefined): Promise<Json> {
    const names = Object.keys(fields);
    if (!names.length) return {};
    if (!formSchema) throw invalid(`fields.${names[0]}`, 'further fields need the work package\'s project and type');
    const schema = await formSchema();
    const body: Json = {};
    const links: Json = {};
    for (const [name, value] of Object.entries(fields)) {
      const [property, spec] = this.propertyOf(schema, name);
      if (!spec.writable) throw invalid(`fields.${name}`, `${spec.name ?? property} cannot be changed`);
      const allowed = (spec._embedded?.allowedValues ?? spec._links?.allowedValues) as Json[] | undefined;
      const type = String(spec.type ?? '');
      if (/^(\[\])?(WorkPackage|Project)$/.test(type) || OTHER_WORK_PACKAGES.has(property)) {
        throw invalid(`fields.${name}`, `${spec.name ?? property} names another work package or project; use parent, project or the link tools`);
      }
      if (!Array.isArray(allowed)) {
        if (spec.location === '_links' || !SCALAR_TYPES.has(type)) throw invalid(`fields.${name}`, `${spec.name ?? property} (${type || 'a resource'}) cannot be set through fields here`);
        body[property] = value;
        continue;
      }
      if (value !== null && typeof value !== 'string' && typeof value !== 'number') throw invalid(`fields.${name}`, 'must be one of its allowed values, by name or id (or null)');
      const label = (option: Json) => String(option.value ?? option.name ?? option.title ?? option.id);
      const chosen = value === null ? null : allowed.find((option) => label(option).toLowerCase() === String(value).toLowerCase() || String(option.id) === String(value));
      const target = chosen === null ? null : chosen?._links?.self?.href ?? chosen?.href;
      if (chosen === undefined || (chosen !== null && (typeof target !== 'string' || !target.startsWith(`${API}/`)))) {
        throw invalid(`fields.${name}`, `must be one of ${allowed.map(label).join(', ') || 'none'} (or null)`);
      }
      links[property] = { href: target };
    }
    if (Object.keys(links).length) body._links = links;
    return body;
  }

  private async body(input: IssueInput, project: string | undefined, formSchema?: () => Promise<Json>): Promise<Json> {
    if (input.labels?.length) throw unsupported(LABEL, 'labels');
    const body: Json = input.fields ? await this.fieldsBody(input.fields, formSchema) : {};
    if (input.summary !== undefined) body.subject = input.summary;
    if (input.description !== undefined) body.description = { format: 'markdown', raw: input.description };
    const links = await this.links(input, project);
    if (Object.keys(links).length) body._links = { ...(body._links ?? {}), ...links };
    return body;
  }

  async createIssue(input: IssueInput): Promise<{ key: string; id: string; url: string }> {
    if (!input.project) throw invalid('project', 'is required to create an OpenProject work package');
    const project = await this.projectId(input.project);
    // OpenProject needs a type: the one named, else the project's first (usually "Task").
    const type = input.type ?? (await this.listIssueTypes(project))[0]?.name;
    const typeId = type ? await this.named(`/projects/${project}/types`, type, 'type') : undefined;
    const form = typeId ? () => this.formSchema(`/projects/${project}/work_packages/form`, { _links: { type: href(`/types/${typeId}`) } }) : undefined;
    const created = await this.call('POST', `/projects/${project}/work_packages`, { body: await this.body({ ...input, ...(typeId ? { type: typeId } : {}) }, project, form) });
    return { key: String(created.id), id: String(created.id), url: this.issueUrl(created.id) };
  }

  /** Changes a work package at its current lockVersion (OpenProject refuses a stale one with 409). */
  private async patch(key: string, change: (current: Json) => Promise<Json> | Json): Promise<Json> {
    const current = await this.workPackage(key);
    const body = await change(current);
    return this.call('PATCH', `/work_packages/${current.id}`, { body: { lockVersion: current.lockVersion, ...body } });
  }

  async updateIssue(key: string, input: IssueInput): Promise<void> {
    await this.patch(key, async (current) => {
      const project = idOf(current._links?.project) ?? undefined;
      const typeId = input.type !== undefined && project ? await this.named(`/projects/${project}/types`, input.type, 'type') : null;
      const form = () => this.formSchema(`/work_packages/${current.id}/form`, { lockVersion: current.lockVersion, ...(typeId ? { _links: { type: href(`/types/${typeId}`) } } : {}) });
      return this.body({ ...input, ...(typeId ? { type: typeId } : {}) }, project, form);
    });
  }

  async deleteIssue(key: string): Promise<void> {
    await this.call('DELETE', `/work_packages/${workPackageId(key)}`);
  }

  /** The statuses the work package may move to: its form's schema lists them. */
  private async allowedStatuses(raw: Json): Promise<Transition[]> {
    const form = await this.call('POST', `/work_packages/${raw.id}/form`, { body: { lockVersion: raw.lockVersion } });
    const allowed = (form._embedded?.schema?.status?._embedded?.allowedValues ?? form._embedded?.schema?.status?._links?.allowedValues ?? []) as Json[];
    return allowed.map((status) => {
      const id = String(status.id ?? idOf(status._links?.self ?? status));
      const name = String(status.name ?? status.title ?? id);
      return { id, name, to: name };
    });
  }

  async listTransitions(key: string): Promise<Transition[]> {
    return this.allowedStatuses(await this.workPackage(key));
  }

  async transitionIssue(key: string, input: TransitionInput): Promise<Transition> {
    const current = await this.workPackage(key);
    const available = await this.allowedStatuses(current);
    const wanted = (input.name ?? '').toLowerCase();
    const chosen = available.find((t) => t.id === input.id) ?? available.find((t) => t.name.toLowerCase() === wanted);
    if (!chosen) throw invalid('transition', `work package ${key} cannot move to "${input.id ?? input.name}" now; allowed: ${available.map((t) => `${t.name} (id ${t.id})`).join(', ') || 'none'}`);
    const extra = input.fields ? await this.fieldsBody(input.fields, () => this.formSchema(`/work_packages/${current.id}/form`, { lockVersion: current.lockVersion })) : {};
    await this.call('PATCH', `/work_packages/${current.id}`, {
      body: { ...extra, lockVersion: current.lockVersion, _links: { ...((extra._links as Json | undefined) ?? {}), status: href(`/statuses/${chosen.id}`) } },
    });
    if (input.comment) await this.addComment(key, input.comment);
    return chosen;
  }

  async assignIssue(key: string, who: string | null): Promise<Account | null> {
    let assigned: Account | null = null;
    await this.patch(key, async (current) => {
      if (who === null) return { _links: { assignee: { href: null } } };
      const id = who === 'me' ? (await this.whoami()).id : await this.userId(who, 'assignee', idOf(current._links?.project) ?? undefined);
      assigned = who === 'me' ? await this.whoami() : { id, name: who };
      return { _links: { assignee: href(`/users/${id}`) } };
    });
    return assigned;
  }

  // ---- comments (activities with a comment) ----

  private async activities(id: string): Promise<Json[]> {
    return ((await this.call('GET', `/work_packages/${id}/activities`))._embedded?.elements ?? []) as Json[];
  }

  private comment(activity: Json): Comment {
    return {
      id: String(activity.id),
      author: this.account(activity._links?.user),
      body: truncate(String(activity.comment?.raw ?? ''), COMMENT_MAX),
      created: activity.createdAt ?? null,
      updated: activity.updatedAt ?? null,
    };
  }

  async listComments(key: string, page: PageRequest): Promise<Page<Comment>> {
    const comments = (await this.activities(workPackageId(key))).filter((a) => a.comment?.raw).map((a) => this.comment(a));
    return slicePage(comments, decodeOffset(page.cursor), page.limit);
  }

  async addComment(key: string, markdown: string): Promise<Comment> {
    return this.comment(await this.call('POST', `/work_packages/${workPackageId(key)}/activities`, { body: { comment: { raw: markdown } } }));
  }

  async editComment(key: string, commentId: string, markdown: string): Promise<Comment> {
    if (!/^\d+$/.test(commentId)) throw invalid('comment_id', 'OpenProject comment ids are numbers');
    // The comment must be this work package's before anything is sent: the binding guard checked the work package.
    const activity = await this.call('GET', `/activities/${commentId}`).catch((error: unknown) => {
      if (error instanceof TrackerError && error.status === 404) return null;
      throw error;
    });
    if (!activity || idOf(activity._links?.workPackage) !== workPackageId(key)) throw new OpError('not_found', `work package ${key} has no comment ${commentId}`, { field: 'comment_id' });
    return this.comment(await this.call('PATCH', `/activities/${commentId}`, { body: { comment: { raw: markdown } } }));
  }

  // ---- metadata ----

  private project(raw: Json): Project {
    return {
      key: String(raw.identifier),
      id: String(raw.id),
      name: String(raw.name ?? ''),
      url: `${this.baseUrl}/projects/${raw.identifier}`,
      description: truncate(String(raw.description?.raw ?? ''), DESCRIPTION_MAX),
    };
  }

  /** A project's numeric id from its id or identifier (OpenProject accepts either in paths). */
  private async projectId(project: string): Promise<string> {
    if (/^\d+$/.test(project)) return project;
    return String((await this.call('GET', `/projects/${encodeURIComponent(project)}`)).id);
  }

  async listProjects(page: PageRequest & { query?: string | undefined }): Promise<Page<Project>> {
    const filters = page.query ? [{ name_and_identifier: { operator: '~', values: [page.query] } }] : [];
    const { elements, startAt, total } = await this.collection('/projects', page, { filters: JSON.stringify(filters) });
    return this.page(elements.map((raw) => this.project(raw)), startAt, total);
  }

  async getProject(key: string): Promise<Project> {
    const raw = await this.call('GET', `/projects/${encodeURIComponent(key)}`);
    return { ...this.project(raw), issue_types: (await this.listIssueTypes(String(raw.id))).map((t) => ({ id: t.id, name: t.name, subtask: false })) };
  }

  async listIssueTypes(project: string): Promise<Named[]> {
    return this.elements(`/projects/${encodeURIComponent(project)}/types`);
  }

  private async elements(path: string): Promise<Named[]> {
    return (((await this.call('GET', path))._embedded?.elements ?? []) as Json[]).map((e) => ({ id: String(e.id), name: String(e.name) }));
  }

  /** An id from a name among a list resource's elements (numbers pass through). */
  private async named(path: string, value: string, field: string): Promise<string> {
    if (/^\d+$/.test(value)) return value;
    const list = await this.elements(path);
    const found = list.find((item) => item.name.toLowerCase() === value.toLowerCase());
    if (!found) throw invalid(field, `OpenProject has no ${field} "${value}" (known: ${list.map((i) => i.name).join(', ') || 'none'})`);
    return found.id;
  }

  /** The fields of a new work package of this type in this project, from its schema. */
  async createFields(project: string, issueType: string): Promise<FieldInfo[]> {
    const projectId = await this.projectId(project);
    const typeId = await this.named(`/projects/${projectId}/types`, issueType, 'issue_type');
    const schema = await this.formSchema(`/projects/${projectId}/work_packages/form`, { _links: { type: href(`/types/${typeId}`) } });
    return Object.entries(schema)
      .filter(([name, spec]) => !name.startsWith('_') && spec && typeof spec === 'object' && (spec as Json).writable)
      .map(([name, spec]) => {
        const s = spec as Json;
        const allowed = (s._embedded?.allowedValues ?? s._links?.allowedValues) as Json[] | undefined;
        return {
          id: name,
          name: String(s.name ?? name),
          type: s.type ?? null,
          required: Boolean(s.required),
          ...(Array.isArray(allowed) ? { allowed_values: allowed.map((v) => String(v.value ?? v.name ?? v.title ?? v.id)) } : {}),
          custom: name.startsWith('customField'),
        };
      });
  }

  async searchFields(query: string | undefined): Promise<FieldInfo[]> {
    // OpenProject lists custom fields per project and type (create_fields); these are everywhere.
    const standard = ['subject', 'description', 'type', 'status', 'priority', 'assignee', 'responsible', 'parent', 'startDate', 'dueDate', 'estimatedTime', 'percentageDone', 'version'];
    const lower = query?.toLowerCase();
    return standard.filter((id) => !lower || id.toLowerCase().includes(lower)).map((id) => ({ id, name: id, type: null, custom: false }));
  }

  async listStatuses(): Promise<Named[]> {
    return this.elements('/statuses');
  }

  async listPriorities(): Promise<Named[]> {
    return this.elements('/priorities');
  }

  async searchUsers(query: string, limit: number): Promise<Account[]> {
    const filters = [{ type: { operator: '=', values: ['User'] } }, { any_name_attribute: { operator: '~', values: [query] } }];
    const result = await this.call('GET', '/principals', { query: { filters: JSON.stringify(filters), pageSize: limit } });
    return ((result._embedded?.elements ?? []) as Json[]).map((u) => this.user(u));
  }

  private async userId(who: string, field: string, project?: string): Promise<string> {
    if (who === 'me') return (await this.whoami()).id;
    if (/^\d+$/.test(who)) return who;
    const candidates = project
      ? (((await this.call('GET', `/projects/${encodeURIComponent(project)}/available_assignees`))._embedded?.elements ?? []) as Json[]).map((u) => this.user(u))
      : await this.searchUsers(who, 25);
    const lower = who.toLowerCase();
    const matches = candidates.filter((u) => u.name.toLowerCase() === lower || u.email?.toLowerCase() === lower);
    if (matches.length === 1) return matches[0]!.id;
    if (!matches.length) throw invalid(field, `no OpenProject user "${who}" ${project ? `can be assigned in project ${project}` : 'found'}; give the user's numeric id or full name`);
    throw invalid(field, `"${who}" matches several OpenProject users; give the numeric id`);
  }

  // ---- links (relations) ----

  async listLinkTypes(): Promise<LinkType[]> {
    return RELATION_TYPES;
  }

  private async relations(id: string): Promise<IssueLink[]> {
    const filters = [{ involved: { operator: '=', values: [id] } }];
    const result = await this.call('GET', '/relations', { query: { filters: JSON.stringify(filters), pageSize: 100 } });
    return ((result._embedded?.elements ?? []) as Json[]).map((r) => {
      const outward = idOf(r._links?.from) === id;
      const type = RELATION_TYPES.find((t) => t.id === r.type);
      return {
        id: String(r.id),
        type: String(r.type),
        direction: outward ? ('outward' as const) : ('inward' as const),
        relation: type ? (outward ? type.outward : type.inward) : String(r.type),
        issue: String(idOf(outward ? r._links?.to : r._links?.from)),
      };
    });
  }

  async linkIssues(input: { type: string; from: string; to: string; comment?: string | undefined }): Promise<void> {
    const type = RELATION_TYPES.find((t) => t.id === input.type || t.outward === input.type);
    if (!type) throw invalid('type', `OpenProject relations are ${RELATION_TYPES.map((t) => t.id).join(', ')}`);
    const from = workPackageId(input.from, 'from');
    await this.call('POST', `/work_packages/${from}/relations`, {
      body: { type: type.id, ...(input.comment ? { description: input.comment } : {}), _links: { from: href(`/work_packages/${from}`), to: href(`/work_packages/${workPackageId(input.to, 'to')}`) } },
    });
  }

  async addRemoteLink(): Promise<{ id: string }> {
    throw unsupported(LABEL, 'Remote links', 'add the URL in a comment instead');
  }

  async setParent(key: string, parent: string | null): Promise<void> {
    await this.patch(key, () => ({ _links: { parent: parent === null ? { href: null } : href(`/work_packages/${workPackageId(parent, 'parent')}`) } }));
  }

  // ---- worklogs (time entries) ----

  private worklog(entry: Json): Worklog {
    const seconds = secondsOf(entry.hours);
    return {
      id: String(entry.id),
      author: this.account(entry._links?.user),
      time_spent: typeof entry.hours === 'string' ? entry.hours : null,
      seconds,
      started: entry.spentOn ?? null,
      comment: String(entry.comment?.raw ?? ''),
    };
  }

  async listWorklogs(key: string, page: PageRequest): Promise<Page<Worklog>> {
    const filters = [{ work_package: { operator: '=', values: [workPackageId(key)] } }];
    const { elements, startAt, total } = await this.collection('/time_entries', page, { filters: JSON.stringify(filters) });
    return this.page(elements.map((e) => this.worklog(e)), startAt, total);
  }

  async addWorklog(key: string, input: { timeSpent: string; started?: string | undefined; comment?: string | undefined }): Promise<Worklog> {
    const spentOn = input.started ? new Date(input.started) : new Date();
    if (Number.isNaN(spentOn.getTime())) throw invalid('started', 'must be an ISO date such as 2026-11-01');
    const entry = await this.call('POST', '/time_entries', {
      body: {
        hours: isoDuration(hoursOf(input.timeSpent)),
        spentOn: spentOn.toISOString().slice(0, 10),
        ...(input.comment ? { comment: { raw: input.comment.slice(0, 1000) } } : {}),
        _links: { workPackage: href(`/work_packages/${workPackageId(key)}`) },
      },
    });
    return this.worklog(entry);
  }

  // ---- attachments ----

  private attachment(a: Json): Attachment {
    return {
      id: String(a.id),
      filename: String(a.fileName ?? ''),
      mime_type: a.contentType || null,
      size: typeof a.fileSize === 'number' ? a.fileSize : null,
      created: a.createdAt ?? null,
      author: this.account(a._links?.author),
    };
  }

  async listAttachments(key: string): Promise<Attachment[]> {
    const result = await this.call('GET', `/work_packages/${workPackageId(key)}/attachments`);
    return ((result._embedded?.elements ?? []) as Json[]).map((a) => this.attachment(a));
  }

  async downloadAttachment(key: string, attachmentId: string, maxBytes: number): Promise<{ attachment: Attachment; data: Buffer }> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    refuseOversize(attachment, maxBytes);
    const data = await this.call<Buffer>('GET', `/attachments/${encodeURIComponent(attachment.id)}/content`, { maxBinaryBytes: maxBytes });
    return { attachment, data };
  }

  async uploadAttachment(key: string, upload: AttachmentUpload): Promise<Attachment> {
    const raw = await multipartBody({ metadata: { json: { fileName: upload.filename } }, file: { file: upload } });
    return this.attachment(await this.call('POST', `/work_packages/${workPackageId(key)}/attachments`, { raw }));
  }

  async deleteAttachment(key: string, attachmentId: string): Promise<void> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    await this.call('DELETE', `/attachments/${encodeURIComponent(attachment.id)}`);
  }
}

// No boards or sprints here: the agile tools refuse clearly.
export interface OpenProjectTracker extends AgileTools {}
Object.assign(OpenProjectTracker.prototype, noAgile(LABEL, 'search work packages by project, status or version instead'));
