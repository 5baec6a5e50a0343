import { invalid, OpError } from '../../errors.ts';
import { numberedKey } from '../numbered-key.ts';
import type { UpstreamHttp, UpstreamMethod, QueryValue } from '../http.ts';
import { nullIfUnseen, TrackerError, unsupported } from '../errors.ts';
import { markdownToMarkup, markupToMarkdown, TEXTILE } from '../text/wiki.ts';
import { truncate } from '../text/markdown.ts';
import { noAgile, type AgileTools } from '../no-agile.ts';
import { hoursOf } from '../duration.ts';
import { attachmentOf, refuseOversize } from '../attachments.ts';
import { confinementBreached, notWithinConfinement } from '../confinement.ts';
import {
  decodeOffset, encodeOffset, offsetPage, slicePage,
  type Account, type Attachment, type AttachmentUpload, type Comment, type FieldInfo, type Issue, type IssueInclude, type IssueInput, type IssueSearch, type LinkType,
  type Named, type Page, type PageRequest, type Project, type Tracker, type Transition, type TransitionInput, type Worklog,
} from '../provider.ts';

// Redmine's REST API (JSON, X-Redmine-API-Key). Issue keys are numbers ("123" or "#123"); texts
// are Textile (Redmine's default formatting); "transitions" are the statuses Redmine allows next.

type Json = Record<string, any>;

const LABEL = 'Redmine';
const DESCRIPTION_MAX = 4000;
const COMMENT_MAX = 2000;
const RELATION_TYPES: LinkType[] = [
  { id: 'relates', name: 'relates', inward: 'related to', outward: 'related to' },
  { id: 'duplicates', name: 'duplicates', inward: 'is duplicated by', outward: 'duplicates' },
  { id: 'blocks', name: 'blocks', inward: 'is blocked by', outward: 'blocks' },
  { id: 'precedes', name: 'precedes', inward: 'follows', outward: 'precedes' },
  { id: 'copied_to', name: 'copied_to', inward: 'copied from', outward: 'copied to' },
];

const issueId = (key: string, field = 'key') => numberedKey(key, field, 'Redmine issues');

// What `fields` may set on Redmine: custom fields by id (cf_12) and these attributes; nothing
// that moves an issue (project_id) or names another one (parent_issue_id): those have inputs the
// binding guard checks.
const ISSUE_ATTRIBUTES = new Set(['start_date', 'due_date', 'done_ratio', 'estimated_hours', 'is_private', 'category_id', 'fixed_version_id', 'private_notes']);
const CUSTOM_FIELD_ID = /^(?:cf|customfield)_(\d+)$/;

const namesCustomField = (name: string) => !CUSTOM_FIELD_ID.test(name) && !ISSUE_ATTRIBUTES.has(name);

/**
 * `fields` as Redmine takes them: attributes as given, custom fields in custom_fields, by id or by
 * name among `known` (the issue's own custom fields: Redmine lists them to administrators only).
 */
function fieldsBody(fields: Record<string, unknown>, known: readonly Json[] | null): Json {
  const body: Json = {};
  const custom: { id: number; value: unknown }[] = [];
  for (const [name, value] of Object.entries(fields)) {
    const id = CUSTOM_FIELD_ID.exec(name)?.[1];
    if (id) custom.push({ id: Number(id), value });
    else if (ISSUE_ATTRIBUTES.has(name)) body[name] = value;
    else {
      const matches = (known ?? []).filter((field) => String(field.name).toLowerCase() === name.toLowerCase());
      if (matches.length === 1) custom.push({ id: Number(matches[0]!.id), value });
      else if (known === null) throw invalid(`fields.${name}`, `a new issue's custom fields go by id (cf_<id>: an edit of an existing issue naming an unknown field lists its custom fields with their ids, as does an administrator's search_fields), or the attributes ${[...ISSUE_ATTRIBUTES].join(', ')}`);
      else throw invalid(`fields.${name}`, `is neither a custom field of this issue (${known.map((field) => `${field.name} (cf_${field.id})`).join(', ') || 'none'}) nor one of ${[...ISSUE_ATTRIBUTES].join(', ')}`);
    }
  }
  if (custom.length) body.custom_fields = custom;
  return body;
}

/**
 * Requested fields of a raw issue, keyed as asked: attributes as they are, custom fields by id or
 * name. `children` (other issues, with their subjects) comes through include: subtasks instead.
 */
function requestedFields(raw: Json, names: readonly string[]): Record<string, unknown> {
  const custom = (raw.custom_fields ?? []) as Json[];
  return Object.fromEntries(names.map((name) => {
    if (['children', 'relations', 'journals'].includes(name)) throw invalid('fields', `${name} comes through include (subtasks, links, comments), not as a raw field`);
    const id = CUSTOM_FIELD_ID.exec(name)?.[1];
    const own = Object.hasOwn(raw, name);
    const field = id ? custom.find((f) => String(f.id) === id) : own ? undefined : custom.find((f) => String(f.name).toLowerCase() === name.toLowerCase());
    return [name, field ? (field.value ?? null) : own ? (raw[name] ?? null) : null];
  }));
}

function redmineError(status: number, body: unknown): TrackerError {
  const errors = body && typeof body === 'object' && Array.isArray((body as Json).errors) ? ((body as Json).errors as unknown[]).map(String) : [];
  return new TrackerError(status, errors);
}

export class RedmineTracker implements Tracker {
  readonly provider = 'redmine' as const;
  private readonly http: UpstreamHttp;
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private me: Account | null = null;

  constructor(http: UpstreamHttp, baseUrl: string, apiKey: string) {
    this.http = http;
    this.baseUrl = baseUrl;
    this.apiKey = apiKey;
  }

  private async call<T>(method: UpstreamMethod, path: string, options: { query?: Record<string, QueryValue>; body?: unknown; raw?: { contentType: string; data: Buffer }; maxBinaryBytes?: number } = {}): Promise<T> {
    const response = await this.http.send({
      method,
      url: `${this.baseUrl}${path}`,
      ...(options.query ? { query: options.query } : {}),
      ...(options.body !== undefined ? { body: options.body } : {}),
      ...(options.raw ? { raw: options.raw } : {}),
      ...(options.maxBinaryBytes ? { binary: true, maxBodyBytes: options.maxBinaryBytes } : {}),
      headers: { 'x-redmine-api-key': this.apiKey, ...(options.maxBinaryBytes ? { accept: '*/*' } : {}) },
    });
    if (response.status >= 400) throw redmineError(response.status, response.body);
    return response.body as T;
  }

  private account(user: Json | null | undefined): Account | null {
    if (!user) return null;
    const name = user.name ?? [user.firstname, user.lastname].filter(Boolean).join(' ');
    return { id: String(user.id), name: String(name || user.login || user.id), ...(user.mail ? { email: String(user.mail) } : {}) };
  }

  private issueUrl(id: string | number): string {
    return `${this.baseUrl}/issues/${id}`;
  }

  private issue(raw: Json, include: IssueInclude[] = [], withDescription = false): Issue {
    const issue: Issue = {
      key: String(raw.id),
      id: String(raw.id),
      url: this.issueUrl(raw.id),
      summary: String(raw.subject ?? ''),
      status: raw.status?.name ?? null,
      type: raw.tracker?.name ?? null,
      priority: raw.priority?.name ?? null,
      assignee: this.account(raw.assigned_to),
      reporter: this.account(raw.author),
      project: raw.project?.name ?? null,
      parent: raw.parent ? String(raw.parent.id) : null,
      labels: [],
      created: raw.created_on ?? null,
      updated: raw.updated_on ?? null,
      description: withDescription ? truncate(markupToMarkdown(String(raw.description ?? ''), TEXTILE), DESCRIPTION_MAX) : null,
    };
    if (include.includes('comments')) issue.comments = ((raw.journals ?? []) as Json[]).filter((j) => j.notes).map((j) => this.comment(j));
    if (include.includes('transitions')) issue.transitions = ((raw.allowed_statuses ?? []) as Json[]).map((s) => ({ id: String(s.id), name: String(s.name), to: String(s.name) }));
    if (include.includes('links')) {
      issue.links = ((raw.relations ?? []) as Json[]).map((r) => {
        const outward = String(r.issue_id) === String(raw.id);
        const type = RELATION_TYPES.find((t) => t.id === r.relation_type);
        return {
          id: String(r.id),
          type: String(r.relation_type),
          direction: outward ? ('outward' as const) : ('inward' as const),
          relation: type ? (outward ? type.outward : type.inward) : String(r.relation_type),
          issue: String(outward ? r.issue_to_id : r.issue_id),
        };
      });
    }
    if (include.includes('subtasks')) issue.subtasks = ((raw.children ?? []) as Json[]).map((c) => ({ key: String(c.id), summary: String(c.subject ?? ''), status: null }));
    if (include.includes('history')) {
      issue.history = ((raw.journals ?? []) as Json[])
        .filter((j) => (j.details ?? []).length)
        .map((j) => ({
          at: String(j.created_on),
          author: j.user?.name ?? null,
          changes: ((j.details ?? []) as Json[]).map((d) => ({ field: String(d.name), from: d.old_value ?? null, to: d.new_value ?? null })),
        }));
    }
    return issue;
  }

  private comment(journal: Json): Comment {
    return {
      id: String(journal.id),
      author: this.account(journal.user),
      body: truncate(markupToMarkdown(String(journal.notes ?? ''), TEXTILE), COMMENT_MAX),
      created: journal.created_on ?? null,
      updated: journal.updated_on ?? null,
    };
  }

  async whoami(): Promise<Account> {
    if (!this.me) {
      const { user } = await this.call<{ user: Json }>('GET', '/users/current.json');
      this.me = this.account(user)!;
    }
    return this.me;
  }

  // ---- name -> id lookups Redmine needs ----

  private async named(path: string, key: string, value: string, field: string): Promise<string> {
    if (/^\d+$/.test(value)) return value;
    const list = ((await this.call<Json>('GET', path))[key] ?? []) as Json[];
    const found = list.find((item) => String(item.name).toLowerCase() === value.toLowerCase());
    if (!found) throw invalid(field, `Redmine has no ${field} "${value}" (known: ${list.map((i) => i.name).join(', ') || 'none'})`);
    return String(found.id);
  }

  private async userId(who: string, field: string, project?: string): Promise<string> {
    if (who === 'me') return String((await this.whoami()).id);
    if (/^\d+$/.test(who)) return who;
    const candidates = project ? await this.projectMembers(project) : await this.searchUsers(who, 25);
    const lower = who.toLowerCase();
    const matches = candidates.filter((u) => u.name.toLowerCase() === lower || u.email?.toLowerCase() === lower);
    if (matches.length === 1) return matches[0]!.id;
    if (!matches.length) throw invalid(field, `no Redmine user "${who}" ${project ? `in project ${project}` : 'found'}; give the user's numeric id or full name`);
    throw invalid(field, `"${who}" matches several Redmine users; give the numeric id`);
  }

  private async projectMembers(project: string): Promise<Account[]> {
    const result = await this.call<Json>('GET', `/projects/${encodeURIComponent(project)}/memberships.json`, { query: { limit: 100 } });
    return ((result.memberships ?? []) as Json[]).filter((m) => m.user).map((m) => this.account(m.user)!);
  }

  // ---- issues ----

  /**
   * Issues through Redmine's filter parameters (f[], op[...], v[...][]): once any is given
   * Redmine ignores the short forms (status_id=..., assigned_to_id=...), so every filter goes so.
   */
  async searchIssues(search: IssueSearch): Promise<Page<Issue>> {
    const offset = decodeOffset(search.cursor);
    const filters: Record<string, { op: string; values: string[] }> = { status_id: { op: '*', values: [] } };
    const query: Record<string, QueryValue> = { offset, limit: search.limit, sort: 'updated_on:desc' };
    if (search.query) {
      if (!/^\d+$/.test(search.query)) throw unsupported(LABEL, 'A free-form query', 'give a saved query id as query, or use project, assignee, status, text and updatedSince');
      // A saved query brings its own filters and Redmine then ignores any given with it.
      if (search.confineTo) throw invalid('query', 'a saved Redmine query cannot be confined to the tracker projects you may read; use project, assignee, status, text and updated_since');
      if (search.assignee || search.status || search.text || search.updatedSince) throw invalid('query', 'a saved Redmine query takes no assignee, status, text or updated_since: Redmine would apply only its own filters');
      query.query_id = search.query;
    }
    let confinedIds: Set<string> | null = null;
    if (search.confineTo) {
      // Exact project ids, not project_id=..., which takes in subprojects that may be bound elsewhere.
      const readable = await this.projectIdsOf(search.confineTo);
      const asked = search.project ? await this.projectRow(search.project).then((p) => String(p.id), nullIfUnseen) : null;
      if (search.project && (asked === null || !readable.has(asked))) throw notWithinConfinement(search.project, search.confineTo);
      confinedIds = asked ? new Set([asked]) : readable;
      if (!confinedIds.size) {
        // None visible may mean a key Redmine no longer knows: it answers those as anonymous.
        await this.confirmCredentials();
        return { items: [], nextCursor: null, total: 0 };
      }
      filters.project_id = { op: '=', values: [...confinedIds] };
    } else if (search.project) query.project_id = search.project;
    if (search.assignee) {
      filters.assigned_to_id = search.assignee === 'none' ? { op: '!*', values: [] } : { op: '=', values: [search.assignee === 'me' ? 'me' : await this.userId(search.assignee, 'assignee', search.project)] };
    }
    if (search.status) {
      const s = search.status.toLowerCase();
      filters.status_id = s === 'open' ? { op: 'o', values: [] } : s === 'closed' ? { op: 'c', values: [] } : { op: '=', values: [await this.named('/issue_statuses.json', 'issue_statuses', search.status, 'status')] };
    }
    if (search.updatedSince) {
      const date = new Date(search.updatedSince);
      if (Number.isNaN(date.getTime())) throw invalid('updated_since', 'must be an ISO date such as 2026-11-01');
      filters.updated_on = { op: '>=', values: [date.toISOString().replace(/\.\d{3}Z$/, 'Z')] };
    }
    if (search.text) filters.subject = { op: '~', values: [search.text] };
    if (!search.query) {
      query.set_filter = 1;
      query['f[]'] = Object.keys(filters);
      for (const [name, filter] of Object.entries(filters)) {
        query[`op[${name}]`] = filter.op;
        if (filter.values.length) query[`v[${name}][]`] = filter.values;
      }
    }
    const result = await this.list('/issues.json', 'issues', query);
    const raws = (result.issues ?? []) as Json[];
    if (confinedIds && raws.some((raw) => !confinedIds.has(String(raw.project?.id)))) throw confinementBreached(LABEL);
    return offsetPage(raws.map((raw) => this.issue(raw)), offset, result.total_count);
  }

  /**
   * Redmine answers a request whose API key it does not know as an anonymous one: public projects'
   * issues, or nothing. An empty answer is returned only once the key is confirmed to be known.
   */
  private async confirmCredentials(): Promise<void> {
    this.me = null;
    await this.whoami();
  }

  /** A collection (`key` in the answer), confirmed to be no anonymous answer when it is empty. */
  private async list(path: string, key: string, query: Record<string, QueryValue>): Promise<Json> {
    const result = await this.call<Json>('GET', path, { query });
    if (!((result[key] ?? []) as unknown[]).length) await this.confirmCredentials();
    return result;
  }

  // ---- projects as bindings name them (identifiers) ----

  private readonly projects = new Map<string, Json>();

  /** A project by id or identifier (one request per call and project). */
  private async projectRow(ref: string): Promise<Json> {
    const cached = this.projects.get(ref);
    if (cached) return cached;
    const { project } = await this.call<{ project: Json }>('GET', `/projects/${encodeURIComponent(ref)}.json`);
    this.projects.set(String(project.id), project);
    this.projects.set(String(project.identifier), project);
    return project;
  }

  /** The numeric ids of the projects with these identifiers that the caller's account can see. */
  private async projectIdsOf(identifiers: readonly string[]): Promise<Set<string>> {
    const ids = await Promise.all(identifiers.map((identifier) => this.projectRow(identifier).then((p) => String(p.id), nullIfUnseen)));
    return new Set(ids.filter((id): id is string => id !== null));
  }

  async bindingProjectOfIssue(key: string, options: { field?: string } = {}): Promise<string> {
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key, options.field)}.json`);
    return String((await this.projectRow(String(issue.project?.id))).identifier);
  }

  async bindingProjectOf(project: string): Promise<string> {
    return /^\d+$/.test(project) ? String((await this.projectRow(project)).identifier) : project.toLowerCase();
  }

  async getIssue(key: string, options: { fields?: string[] | undefined; include: IssueInclude[] }): Promise<Issue> {
    const include = [
      options.include.includes('comments') || options.include.includes('history') ? 'journals' : null,
      options.include.includes('links') ? 'relations' : null,
      options.include.includes('subtasks') ? 'children' : null,
      options.include.includes('transitions') ? 'allowed_statuses' : null,
    ].filter(Boolean);
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`, { query: include.length ? { include: include.join(',') } : {} });
    const found = this.issue(issue, options.include, true);
    if (options.fields?.length) found.fields = requestedFields(issue, options.fields);
    return found;
  }

  private async issueBody(input: IssueInput, project?: string, known: readonly Json[] | null = null): Promise<Json> {
    const body: Json = {};
    if (input.project !== undefined) body.project_id = input.project;
    if (input.type !== undefined) body.tracker_id = await this.named('/trackers.json', 'trackers', input.type, 'type');
    if (input.summary !== undefined) body.subject = input.summary;
    if (input.description !== undefined) body.description = markdownToMarkup(input.description, TEXTILE);
    if (input.priority !== undefined) body.priority_id = await this.named('/enumerations/issue_priorities.json', 'issue_priorities', input.priority, 'priority');
    if (input.assignee !== undefined) body.assigned_to_id = await this.userId(input.assignee, 'assignee', input.project ?? project);
    if (input.parent !== undefined) body.parent_issue_id = issueId(input.parent, 'parent');
    if (input.labels?.length) throw unsupported(LABEL, 'labels');
    if (input.fields) Object.assign(body, fieldsBody(input.fields, known));
    return body;
  }

  async createIssue(input: IssueInput): Promise<{ key: string; id: string; url: string }> {
    const { issue } = await this.call<{ issue: Json }>('POST', '/issues.json', { body: { issue: await this.issueBody(input) } });
    return { key: String(issue.id), id: String(issue.id), url: this.issueUrl(issue.id) };
  }

  private async projectOf(key: string): Promise<string> {
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`);
    return String(issue.project?.id);
  }

  /** The issue's custom fields, when `fields` names one by name. */
  private async customFieldsOf(key: string, fields: Record<string, unknown> | undefined): Promise<Json[] | null> {
    if (!Object.keys(fields ?? {}).some(namesCustomField)) return null;
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`);
    return (issue.custom_fields ?? []) as Json[];
  }

  async updateIssue(key: string, input: IssueInput): Promise<void> {
    const project = input.assignee !== undefined && input.assignee !== 'me' ? await this.projectOf(key) : undefined;
    const known = await this.customFieldsOf(key, input.fields);
    await this.call('PUT', `/issues/${issueId(key)}.json`, { body: { issue: await this.issueBody(input, project, known) } });
  }

  async deleteIssue(key: string, deleteSubtasks: boolean): Promise<void> {
    // Redmine deletes an issue's sub-tasks with it, always: without delete_subtasks that is refused.
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`, { query: { include: 'children' } });
    if (!deleteSubtasks && ((issue.children ?? []) as Json[]).length) {
      throw invalid('delete_subtasks', `issue ${key} has sub-tasks, which Redmine deletes with it; pass delete_subtasks: true to delete them too`);
    }
    await this.call('DELETE', `/issues/${issueId(key)}.json`);
  }

  async listTransitions(key: string): Promise<Transition[]> {
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`, { query: { include: 'allowed_statuses' } });
    return ((issue.allowed_statuses ?? []) as Json[]).map((s) => ({ id: String(s.id), name: String(s.name), to: String(s.name) }));
  }

  async transitionIssue(key: string, input: TransitionInput): Promise<Transition> {
    const available = await this.listTransitions(key);
    const wanted = (input.name ?? '').toLowerCase();
    const chosen = available.find((t) => t.id === input.id) ?? available.find((t) => t.name.toLowerCase() === wanted);
    if (!chosen) throw invalid('transition', `issue ${key} cannot move to "${input.id ?? input.name}" now; allowed: ${available.map((t) => `${t.name} (id ${t.id})`).join(', ') || 'none'}`);
    await this.call('PUT', `/issues/${issueId(key)}.json`, {
      body: { issue: { ...(input.fields ? fieldsBody(input.fields, await this.customFieldsOf(key, input.fields)) : {}), status_id: Number(chosen.id), ...(input.comment ? { notes: markdownToMarkup(input.comment, TEXTILE) } : {}) } },
    });
    return chosen;
  }

  async assignIssue(key: string, who: string | null): Promise<Account | null> {
    if (who === null) {
      await this.call('PUT', `/issues/${issueId(key)}.json`, { body: { issue: { assigned_to_id: '' } } });
      return null;
    }
    const id = who === 'me' ? String((await this.whoami()).id) : await this.userId(who, 'assignee', await this.projectOf(key));
    await this.call('PUT', `/issues/${issueId(key)}.json`, { body: { issue: { assigned_to_id: Number(id) } } });
    return who === 'me' ? this.whoami() : { id, name: who };
  }

  // ---- comments (journals with notes) ----

  private async journals(key: string): Promise<Json[]> {
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`, { query: { include: 'journals' } });
    return ((issue.journals ?? []) as Json[]).filter((j) => j.notes);
  }

  async listComments(key: string, page: PageRequest): Promise<Page<Comment>> {
    const offset = decodeOffset(page.cursor);
    return slicePage((await this.journals(key)).map((j) => this.comment(j)), offset, page.limit);
  }

  async addComment(key: string, markdown: string): Promise<Comment> {
    await this.call('PUT', `/issues/${issueId(key)}.json`, { body: { issue: { notes: markdownToMarkup(markdown, TEXTILE) } } });
    const me = await this.whoami();
    const mine = (await this.journals(key)).filter((j) => String(j.user?.id) === me.id);
    return this.comment(mine.at(-1) ?? { id: '', user: { id: me.id, name: me.name }, notes: markdown });
  }

  async editComment(key: string, commentId: string, markdown: string): Promise<Comment> {
    if (!/^\d+$/.test(commentId)) throw invalid('comment_id', 'Redmine comment ids are numbers');
    // The comment must be this issue's before anything is sent: the binding guard checked the issue.
    if (!(await this.journals(key)).some((j) => String(j.id) === commentId)) throw new OpError('not_found', `issue ${key} has no comment ${commentId}`, { field: 'comment_id' });
    await this.call('PUT', `/journals/${commentId}.json`, { body: { journal: { notes: markdownToMarkup(markdown, TEXTILE) } } });
    const found = (await this.journals(key)).find((j) => String(j.id) === commentId);
    if (!found) throw new OpError('not_found', `issue ${key} has no comment ${commentId}`, { field: 'comment_id' });
    return this.comment(found);
  }

  // ---- metadata ----

  private project(p: Json): Project {
    return {
      key: String(p.identifier),
      id: String(p.id),
      name: String(p.name ?? ''),
      url: `${this.baseUrl}/projects/${p.identifier}`,
      description: truncate(markupToMarkdown(String(p.description ?? ''), TEXTILE), DESCRIPTION_MAX),
      ...(Array.isArray(p.trackers) ? { issue_types: (p.trackers as Json[]).map((t) => ({ id: String(t.id), name: String(t.name), subtask: false })) } : {}),
    };
  }

  async listProjects(page: PageRequest & { query?: string | undefined }): Promise<Page<Project>> {
    const offset = decodeOffset(page.cursor);
    const result = await this.list('/projects.json', 'projects', { offset, limit: page.limit });
    const projects = ((result.projects ?? []) as Json[]).filter((p) => !page.query || `${p.identifier} ${p.name}`.toLowerCase().includes(page.query.toLowerCase()));
    const seen = ((result.projects ?? []) as Json[]).length;
    return { items: projects.map((p) => this.project(p)), nextCursor: seen && offset + seen < Number(result.total_count ?? 0) ? encodeOffset(offset + seen) : null, total: result.total_count ?? null };
  }

  async getProject(key: string): Promise<Project> {
    const { project } = await this.call<{ project: Json }>('GET', `/projects/${encodeURIComponent(key)}.json`, { query: { include: 'trackers' } });
    return this.project(project);
  }

  async listIssueTypes(project: string): Promise<Named[]> {
    return ((await this.getProject(project)).issue_types ?? []).map((t) => ({ id: t.id, name: t.name }));
  }

  async createFields(project: string, issueType: string): Promise<FieldInfo[]> {
    await this.named('/trackers.json', 'trackers', issueType, 'issue_type');
    const { project: p } = await this.call<{ project: Json }>('GET', `/projects/${encodeURIComponent(project)}.json`, { query: { include: 'issue_custom_fields' } });
    const standard: FieldInfo[] = [
      { id: 'subject', name: 'Subject', type: 'string', required: true },
      { id: 'description', name: 'Description', type: 'text', required: false },
      { id: 'priority', name: 'Priority', type: 'priority', required: false },
      { id: 'assigned_to_id', name: 'Assignee', type: 'user', required: false },
      { id: 'start_date', name: 'Start date', type: 'date', required: false },
      { id: 'due_date', name: 'Due date', type: 'date', required: false },
      { id: 'estimated_hours', name: 'Estimated time', type: 'number', required: false },
    ];
    const custom = ((p.issue_custom_fields ?? []) as Json[]).map((f) => ({ id: `cf_${f.id}`, name: String(f.name), type: null, custom: true }));
    return [...standard, ...custom];
  }

  async searchFields(query: string | undefined): Promise<FieldInfo[]> {
    let fields: FieldInfo[];
    try {
      const result = await this.call<Json>('GET', '/custom_fields.json');
      fields = ((result.custom_fields ?? []) as Json[]).filter((f) => f.customized_type === 'issue').map((f) => ({ id: `cf_${f.id}`, name: String(f.name), type: f.field_format ?? null, custom: true }));
    } catch (error) {
      // Listing custom fields needs a Redmine administrator; everyone else sees the standard ones.
      if (!(error instanceof TrackerError) || error.status !== 403) throw error;
      fields = [];
    }
    const standard = ['subject', 'description', 'status', 'priority', 'assigned_to_id', 'start_date', 'due_date', 'done_ratio', 'estimated_hours'].map((id) => ({ id, name: id, type: null, custom: false }));
    const lower = query?.toLowerCase();
    return [...standard, ...fields].filter((f) => !lower || f.name.toLowerCase().includes(lower) || f.id.includes(lower));
  }

  async listStatuses(): Promise<Named[]> {
    return (((await this.call<Json>('GET', '/issue_statuses.json')).issue_statuses ?? []) as Json[]).map((s) => ({ id: String(s.id), name: String(s.name) }));
  }

  async listPriorities(): Promise<Named[]> {
    return (((await this.call<Json>('GET', '/enumerations/issue_priorities.json')).issue_priorities ?? []) as Json[]).map((p) => ({ id: String(p.id), name: String(p.name) }));
  }

  async searchUsers(query: string, limit: number): Promise<Account[]> {
    try {
      const result = await this.call<Json>('GET', '/users.json', { query: { name: query, limit } });
      return ((result.users ?? []) as Json[]).map((u) => this.account(u)!);
    } catch (error) {
      if (error instanceof TrackerError && error.status === 403) {
        throw unsupported(LABEL, 'Searching users without Redmine administrator rights', 'assign by the user\'s full name or numeric id; names are looked up among the project\'s members');
      }
      throw error;
    }
  }

  // ---- links (relations) ----

  async listLinkTypes(): Promise<LinkType[]> {
    return RELATION_TYPES;
  }

  async linkIssues(input: { type: string; from: string; to: string; comment?: string | undefined }): Promise<void> {
    const type = RELATION_TYPES.find((t) => t.id === input.type || t.outward === input.type);
    if (!type) throw invalid('type', `Redmine relations are ${RELATION_TYPES.map((t) => t.id).join(', ')}`);
    await this.call('POST', `/issues/${issueId(input.from, 'from')}/relations.json`, { body: { relation: { issue_to_id: Number(issueId(input.to, 'to')), relation_type: type.id } } });
    if (input.comment) await this.addComment(input.from, input.comment);
  }

  async addRemoteLink(): Promise<{ id: string }> {
    throw unsupported(LABEL, 'Remote links', 'add the URL in a comment instead');
  }

  async setParent(key: string, parent: string | null): Promise<void> {
    await this.call('PUT', `/issues/${issueId(key)}.json`, { body: { issue: { parent_issue_id: parent === null ? '' : Number(issueId(parent, 'parent')) } } });
  }

  // ---- worklogs (time entries) ----

  private worklog(entry: Json): Worklog {
    return {
      id: String(entry.id),
      author: this.account(entry.user),
      time_spent: entry.hours !== undefined ? `${entry.hours}h` : null,
      seconds: entry.hours !== undefined ? Math.round(Number(entry.hours) * 3600) : null,
      started: entry.spent_on ?? null,
      comment: String(entry.comments ?? ''),
    };
  }

  async listWorklogs(key: string, page: PageRequest): Promise<Page<Worklog>> {
    const offset = decodeOffset(page.cursor);
    const result = await this.list('/time_entries.json', 'time_entries', { issue_id: issueId(key), offset, limit: page.limit });
    return offsetPage(((result.time_entries ?? []) as Json[]).map((e) => this.worklog(e)), offset, result.total_count);
  }

  async addWorklog(key: string, input: { timeSpent: string; started?: string | undefined; comment?: string | undefined }): Promise<Worklog> {
    const spentOn = input.started ? new Date(input.started) : null;
    if (spentOn && Number.isNaN(spentOn.getTime())) throw invalid('started', 'must be an ISO date such as 2026-11-01');
    // Redmine needs an activity; the default one (or the first active one) is used.
    const activities = ((await this.call<Json>('GET', '/enumerations/time_entry_activities.json')).time_entry_activities ?? []) as Json[];
    const activity = activities.find((a) => a.is_default) ?? activities.find((a) => a.active !== false);
    const { time_entry } = await this.call<{ time_entry: Json }>('POST', '/time_entries.json', {
      body: { time_entry: { issue_id: Number(issueId(key)), hours: hoursOf(input.timeSpent), ...(activity ? { activity_id: activity.id } : {}), ...(spentOn ? { spent_on: spentOn.toISOString().slice(0, 10) } : {}), ...(input.comment ? { comments: input.comment.slice(0, 1000) } : {}) } },
    });
    return this.worklog(time_entry);
  }

  // ---- attachments ----

  private attachment(a: Json): Attachment {
    return {
      id: String(a.id),
      filename: String(a.filename ?? ''),
      mime_type: a.content_type || null,
      size: typeof a.filesize === 'number' ? a.filesize : null,
      created: a.created_on ?? null,
      author: this.account(a.author),
    };
  }

  async listAttachments(key: string): Promise<Attachment[]> {
    const { issue } = await this.call<{ issue: Json }>('GET', `/issues/${issueId(key)}.json`, { query: { include: 'attachments' } });
    return ((issue.attachments ?? []) as Json[]).map((a) => this.attachment(a));
  }

  async downloadAttachment(key: string, attachmentId: string, maxBytes: number): Promise<{ attachment: Attachment; data: Buffer }> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    refuseOversize(attachment, maxBytes);
    // Redmine's own download route on the connection's site, not the content_url it reports
    // (built from whatever host it was reached by).
    const data = await this.call<Buffer>('GET', `/attachments/download/${encodeURIComponent(attachment.id)}`, { maxBinaryBytes: maxBytes });
    return { attachment, data };
  }

  async uploadAttachment(key: string, upload: AttachmentUpload): Promise<Attachment> {
    const id = issueId(key);
    const { upload: uploaded } = await this.call<{ upload: Json }>('POST', '/uploads.json', { query: { filename: upload.filename }, raw: { contentType: 'application/octet-stream', data: upload.data } });
    await this.call('PUT', `/issues/${id}.json`, { body: { issue: { uploads: [{ token: uploaded.token, filename: upload.filename, content_type: upload.mimeType }] } } });
    if (uploaded.id !== undefined) {
      const { attachment } = await this.call<{ attachment: Json }>('GET', `/attachments/${encodeURIComponent(String(uploaded.id))}.json`);
      return this.attachment(attachment);
    }
    const mine = (await this.listAttachments(key)).filter((a) => a.filename === upload.filename);
    return mine.at(-1) ?? { id: '', filename: upload.filename, mime_type: upload.mimeType, size: upload.data.length, created: null, author: null };
  }

  async deleteAttachment(key: string, attachmentId: string): Promise<void> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    await this.call('DELETE', `/attachments/${encodeURIComponent(attachment.id)}.json`);
  }
}

// No boards or sprints here: the agile tools refuse clearly.
export interface RedmineTracker extends AgileTools {}
Object.assign(RedmineTracker.prototype, noAgile(LABEL));
