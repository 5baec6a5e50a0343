import { invalid, OpError } from '../../errors.ts';
import { adfLosses, adfToMarkdown, markdownToAdf } from '../text/adf.ts';
import { markdownToMarkup, markupToMarkdown, wikiLosses, WIKI } from '../text/wiki.ts';
import { truncate } from '../text/markdown.ts';
import { unsupported } from '../errors.ts';
import {
  badCursor, decodeOffset, encodeOffset, offsetPage, slicePage,
  type Account, type Attachment, type AttachmentUpload, type Board, type Comment, type FieldInfo, type Issue, type IssueInclude, type IssueInput, type IssueSearch, type LinkType,
  type Named, type Page, type PageRequest, type Project, type Sprint, type Tracker, type Transition, type TransitionInput, type Worklog,
} from '../provider.ts';
import type { JiraApi } from './api.ts';
import { attachmentOf, multipartBody, refuseOversize } from '../attachments.ts';
import { jiraProjectOf } from './keys.ts';
import { confinementBreached } from '../confinement.ts';

// Jira Cloud (REST v3: ADF bodies, accountId, /search/jql with nextPageToken) and Data Center
// (REST v2: wiki markup, username, startAt paging) behind the one Tracker interface.

type Json = Record<string, any>;

const BASE_FIELDS = ['summary', 'status', 'issuetype', 'priority', 'assignee', 'reporter', 'project', 'parent', 'labels', 'created', 'updated'];
// Jira's own field ids, and its custom field ids: anything else a caller names is a field's name.
const SYSTEM_FIELDS = new Set([
  ...BASE_FIELDS, 'description', 'comment', 'issuelinks', 'subtasks', 'components', 'fixVersions', 'versions', 'environment', 'duedate', 'timetracking',
  'security', 'resolution', 'resolutiondate', 'worklog', 'attachment', 'watches', 'votes', 'timespent', 'timeestimate', 'timeoriginalestimate',
  'aggregatetimespent', 'progress', 'creator', 'statuscategorychangedate', 'lastViewed',
]);
const isFieldId = (key: string) => SYSTEM_FIELDS.has(key) || /^customfield_\d+$/.test(key);
// What has an input of its own: a field name resolving to one of these is refused like its id.
const OWN_INPUT_FIELDS = new Set(['project', 'parent', 'issuetype', 'summary', 'description', 'priority', 'labels', 'assignee']);
const DESCRIPTION_MAX = 4000;
const COMMENT_MAX = 2000;
const FIELD_MAX = 1000;

export const quoteJql = (value: string) => `"${value.replace(/["\\]/g, '\\$&')}"`;

/**
 * Whether JQL text keeps its parentheses balanced (never closing one it did not open) and closes
 * every string. A backslash outside a string fails it: Jira reads it as escaping the next
 * character of an unquoted word, so a quote or parenthesis after it would mean something else to
 * Jira than to this count.
 */
export function balancedJql(text: string): boolean {
  let depth = 0;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '\\') return false;
    else if (c === '"' || c === "'") quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth < 0) return false;
  }
  return depth === 0 && quote === null;
}

function jqlDate(value: string, field: string): string {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw invalid(field, 'must be an ISO date such as 2026-11-01 or 2026-11-01T09:00:00Z');
  return `"${date.toISOString().slice(0, 16).replace('T', ' ')}"`;
}

function encodeToken(token: string): string {
  return Buffer.from(`t:${token}`).toString('base64url');
}

function decodeToken(cursor: string | undefined): string | undefined {
  if (!cursor) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString();
  if (!text.startsWith('t:')) throw badCursor();
  return text.slice(2);
}

export class JiraTracker implements Tracker {
  readonly provider;
  private readonly api: JiraApi;
  private readonly cloud: boolean;
  private readonly label: string;
  private me: Account | null = null;
  private fieldCatalogue: Promise<Json[]> | null = null;

  constructor(api: JiraApi) {
    this.api = api;
    this.cloud = api.endpoint.flavor === 'cloud';
    this.provider = this.cloud ? ('jira_cloud' as const) : ('jira_dc' as const);
    this.label = this.cloud ? 'Jira Cloud' : 'Jira Data Center';
  }

  // ---- conversions ----

  private account(user: Json | null | undefined): Account | null {
    if (!user) return null;
    return {
      id: String(this.cloud ? user.accountId : (user.name ?? user.key)),
      name: String(user.displayName ?? user.name ?? ''),
      ...(user.emailAddress ? { email: String(user.emailAddress) } : {}),
    };
  }

  private toText(markdown: string): unknown {
    return this.cloud ? markdownToAdf(markdown) : markdownToMarkup(markdown, WIKI);
  }

  private fromText(value: unknown): string {
    if (value === null || value === undefined) return '';
    return this.cloud ? adfToMarkdown(value) : markupToMarkdown(String(value), WIKI);
  }

  private issueUrl(key: string): string {
    return `${this.api.endpoint.siteUrl}/browse/${key}`;
  }

  private comment(c: Json): Comment {
    return {
      id: String(c.id),
      author: this.account(c.author),
      body: truncate(this.fromText(c.body), COMMENT_MAX),
      created: c.created ?? null,
      updated: c.updated ?? null,
    };
  }

  private link(l: Json): NonNullable<Issue['links']>[number] {
    const outward = Boolean(l.outwardIssue);
    return {
      id: String(l.id),
      type: String(l.type?.name ?? ''),
      direction: outward ? 'outward' : 'inward',
      relation: String(outward ? l.type?.outward : l.type?.inward),
      issue: String((outward ? l.outwardIssue : l.inwardIssue)?.key ?? ''),
    };
  }

  private issue(raw: Json, requested: string[] = [], include: IssueInclude[] = [], ids: ReadonlyMap<string, string> = new Map()): Issue {
    const f: Json = raw.fields ?? {};
    const issue: Issue = {
      key: String(raw.key),
      id: String(raw.id),
      url: this.issueUrl(String(raw.key)),
      summary: String(f.summary ?? ''),
      status: f.status?.name ?? null,
      type: f.issuetype?.name ?? null,
      priority: f.priority?.name ?? null,
      assignee: this.account(f.assignee),
      reporter: this.account(f.reporter),
      project: f.project?.key ?? null,
      parent: f.parent?.key ?? null,
      labels: Array.isArray(f.labels) ? f.labels.map(String) : [],
      created: f.created ?? null,
      updated: f.updated ?? null,
      description: f.description === undefined ? null : truncate(this.fromText(f.description), DESCRIPTION_MAX),
    };
    const extra = requested.filter((name) => {
      const id = ids.get(name) ?? name;
      return !BASE_FIELDS.includes(id) && !['description', 'comment'].includes(id);
    });
    if (extra.length) {
      issue.fields = Object.fromEntries(extra.map((name) => {
        const value = f[ids.get(name) ?? name];
        const text = value && typeof value === 'object' && value.type === 'doc' ? truncate(adfToMarkdown(value), FIELD_MAX) : value;
        return [name, typeof text === 'string' ? truncate(text, FIELD_MAX) : (text ?? null)];
      }));
    }
    if (include.includes('comments')) issue.comments = ((f.comment?.comments ?? []) as Json[]).map((c) => this.comment(c));
    if (include.includes('transitions')) issue.transitions = ((raw.transitions ?? []) as Json[]).map((t) => this.transition(t));
    if (include.includes('links')) issue.links = ((f.issuelinks ?? []) as Json[]).map((l) => this.link(l));
    if (include.includes('subtasks')) {
      issue.subtasks = ((f.subtasks ?? []) as Json[]).map((s) => ({ key: String(s.key), summary: String(s.fields?.summary ?? ''), status: s.fields?.status?.name ?? null }));
    }
    if (include.includes('history')) {
      issue.history = ((raw.changelog?.histories ?? []) as Json[]).map((h) => ({
        at: String(h.created),
        author: h.author?.displayName ?? null,
        changes: ((h.items ?? []) as Json[]).map((i) => ({ field: String(i.field), from: i.fromString ?? null, to: Object.hasOwn(i, 'toString') ? ((i['toString'] as unknown as string | null) ?? null) : null })),
      }));
    }
    return issue;
  }

  private transition(t: Json): Transition {
    return { id: String(t.id), name: String(t.name), to: t.to?.name ?? null };
  }

  /**
   * Field ids for what a caller named: an id as is, otherwise a field's name (case-insensitive,
   * from GET /field, asked once per call). An unknown or ambiguous name is refused on its field.
   */
  private async fieldIds(keys: readonly string[] | undefined, input: string): Promise<Map<string, string>> {
    const ids = new Map<string, string>();
    const named: string[] = [];
    for (const key of keys ?? []) {
      if (isFieldId(key)) ids.set(key, key);
      else named.push(key);
    }
    if (!named.length) return ids;
    const catalogue = await this.fields();
    for (const name of named) {
      const byId = catalogue.find((f) => String(f.id) === name);
      const byName = catalogue.filter((f) => String(f.name).toLowerCase() === name.toLowerCase());
      if (!byId && byName.length > 1) throw invalid(`${input}.${name}`, `several Jira fields are named "${name}" (${byName.map((f) => f.id).join(', ')}); give the one you mean by id`);
      const field = byId ?? byName[0];
      if (!field) throw invalid(`${input}.${name}`, `no Jira field has the id or name "${name}"; search_fields lists them`);
      ids.set(name, String(field.id));
    }
    return ids;
  }

  /** Fields to return: other issues come through include (links, subtasks), never as raw fields (by id or by any name). */
  private async readableFieldIds(fields: readonly string[] | undefined, input: string): Promise<Map<string, string>> {
    const ids = await this.fieldIds(fields, input);
    for (const [name, id] of ids) {
      if (['issuelinks', 'subtasks'].includes(id)) throw invalid(input, `${name} is Jira's ${id}, which carries other issues: use include (links, subtasks) instead`);
    }
    return ids;
  }

  /**
   * Further fields as Jira takes them: keyed by id, whether the caller named them by id or by name.
   * A confined caller (project bindings) may not set what reaches other issues or sprints through
   * them: a sprint field (move_to_sprint needs a global grant), epic and parent links, issue links.
   */
  private async fieldsById(given: Record<string, unknown>, confined = false): Promise<Json> {
    const ids = await this.fieldIds(Object.keys(given), 'fields');
    const fields: Json = {};
    for (const [key, value] of Object.entries(given)) {
      const id = ids.get(key) ?? key;
      if (id !== key && OWN_INPUT_FIELDS.has(id)) throw invalid(`fields.${key}`, `is Jira's ${id} field, which has an input of its own; give it there`);
      if (confined && (await this.reachesOtherIssues(id))) {
        throw new OpError('forbidden', `permission denied: fields.${key} reaches other issues or a sprint (Jira's ${id}), which your grant, confined to some projects, does not cover; use the link, parent or sprint tools`, { field: `fields.${key}` });
      }
      fields[id] = value;
    }
    return fields;
  }

  /** Jira's fields (GET /field), asked once per call. */
  private fields(): Promise<Json[]> {
    this.fieldCatalogue ??= this.api.api<Json[]>('GET', '/field');
    return this.fieldCatalogue;
  }

  private async reachesOtherIssues(id: string): Promise<boolean> {
    if (['issuelinks', 'subtasks', 'parent'].includes(id)) return true;
    if (!/^customfield_\d+$/.test(id)) return false;
    const custom = String((await this.fields()).find((f) => String(f.id) === id)?.schema?.custom ?? '');
    return /gh-sprint|gh-epic-link|jpo-custom-field-parent|gh-epic-label|issuelink/i.test(custom);
  }

  private requestedFields(fields: string[] | undefined, include: IssueInclude[] = [], withDescription = false): string[] {
    const set = new Set([...BASE_FIELDS, ...(fields ?? [])]);
    if (withDescription) set.add('description');
    if (include.includes('comments')) set.add('comment');
    if (include.includes('links')) set.add('issuelinks');
    if (include.includes('subtasks')) set.add('subtasks');
    return [...set];
  }

  // ---- users ----

  async whoami(): Promise<Account> {
    if (!this.me) this.me = this.account(await this.api.api<Json>('GET', '/myself'))!;
    return this.me;
  }

  /** An account id, email, user name or display name (or "me") as the provider's user. */
  private async resolveUser(who: string, field: string): Promise<Account> {
    if (who === 'me') return this.whoami();
    if (this.cloud && /^[0-9a-f]{24}$|^\d+:[0-9a-f-]{36}$/i.test(who)) return { id: who, name: who };
    const found = await this.searchUsers(who, 20);
    const lower = who.toLowerCase();
    const exact = found.filter((u) => u.email?.toLowerCase() === lower || u.id.toLowerCase() === lower || u.name.toLowerCase() === lower);
    const matches = exact.length ? exact : found;
    if (matches.length === 1) return matches[0]!;
    if (!matches.length) throw invalid(field, `no ${this.label} user matches "${who}"`);
    throw invalid(field, `"${who}" matches several ${this.label} users (${matches.slice(0, 5).map((u) => u.name).join(', ')}); give an email or account id`);
  }

  private userRef(account: Account): Json {
    return this.cloud ? { accountId: account.id } : { name: account.id };
  }

  async searchUsers(query: string, limit: number): Promise<Account[]> {
    const users = await this.api.api<Json[]>('GET', '/user/search', { query: this.cloud ? { query, maxResults: limit } : { username: query, maxResults: limit } });
    return users.map((u) => this.account(u)!);
  }

  // ---- issues ----

  private async jql(search: IssueSearch): Promise<string> {
    const clauses: string[] = [];
    if (search.project) clauses.push(`project = ${quoteJql(search.project)}`);
    if (search.assignee) {
      if (search.assignee === 'me') clauses.push('assignee = currentUser()');
      else if (search.assignee === 'none') clauses.push('assignee is EMPTY');
      else clauses.push(`assignee = ${quoteJql((await this.resolveUser(search.assignee, 'assignee')).id)}`);
    }
    if (search.status) clauses.push(`status = ${quoteJql(search.status)}`);
    if (search.text) clauses.push(`text ~ ${quoteJql(search.text)}`);
    if (search.updatedSince) clauses.push(`updated >= ${jqlDate(search.updatedSince, 'updated_since')}`);
    let base = search.query?.trim() ?? '';
    let order = 'ORDER BY updated DESC';
    const orderAt = base.search(/\border\s+by\b/i);
    if (orderAt >= 0) {
      order = base.slice(orderAt);
      base = base.slice(0, orderAt).trim();
    }
    if (base) clauses.unshift(`(${base})`);
    if (search.confineTo) {
      // The confinement must hold whatever the query says: it is ANDed with the whole query, which
      // must not close a parenthesis it did not open or leave a string open (either would let an OR escape).
      if (!balancedJql(base)) throw invalid('query', 'must have balanced parentheses and quotes (your searches are confined to the tracker projects you may read)');
      if (!/^order\s+by\s+[\w\s,.[\]-]*$/i.test(order)) throw invalid('query', 'ORDER BY may name fields and ASC/DESC only (your searches are confined to the tracker projects you may read)');
      const confinement = `project in (${search.confineTo.map(quoteJql).join(', ')})`;
      return `${confinement}${clauses.length ? ` AND (${clauses.join(' AND ')})` : ''} ${order}`.trim();
    }
    // Jira Cloud refuses unbounded searches; a bound that includes everything keeps "all issues" possible.
    if (!clauses.length && this.cloud) clauses.push('created >= "1970-01-01"');
    return `${clauses.join(' AND ')} ${order}`.trim();
  }

  async searchIssues(search: IssueSearch): Promise<Page<Issue>> {
    const page = await this.searchPage(search);
    // The confinement is in the query; should Jira read it otherwise, nothing outside it is shown.
    if (search.confineTo && page.items.some((issue) => !search.confineTo!.includes(issue.project ?? ''))) {
      throw confinementBreached(this.label);
    }
    return page;
  }

  private async searchPage(search: IssueSearch): Promise<Page<Issue>> {
    const jql = await this.jql(search);
    const ids = await this.readableFieldIds(search.fields, 'fields');
    const fields = this.requestedFields(search.fields?.map((name) => ids.get(name) ?? name));
    if (this.cloud) {
      const token = decodeToken(search.cursor);
      const result = await this.api.api<Json>('POST', '/search/jql', {
        body: { jql, maxResults: search.limit, fields, ...(token ? { nextPageToken: token } : {}) },
      });
      const items = ((result.issues ?? []) as Json[]).map((raw) => this.issue(raw, search.fields, [], ids));
      return { items, nextCursor: result.nextPageToken && !result.isLast ? encodeToken(String(result.nextPageToken)) : null };
    }
    const startAt = decodeOffset(search.cursor);
    const result = await this.api.api<Json>('POST', '/search', { body: { jql, startAt, maxResults: search.limit, fields } });
    return offsetPage(((result.issues ?? []) as Json[]).map((raw) => this.issue(raw, search.fields, [], ids)), startAt, result.total);
  }

  async getIssue(key: string, options: { fields?: string[] | undefined; include: IssueInclude[] }): Promise<Issue> {
    const expand = [options.include.includes('transitions') ? 'transitions' : null, options.include.includes('history') ? 'changelog' : null].filter(Boolean);
    const ids = await this.readableFieldIds(options.fields, 'fields');
    const raw = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}`, {
      query: { fields: this.requestedFields(options.fields?.map((name) => ids.get(name) ?? name), options.include, true).join(','), ...(expand.length ? { expand: expand.join(',') } : {}) },
    });
    return this.issue(raw, options.fields, options.include, ids);
  }

  private async issueFields(input: IssueInput): Promise<Json> {
    const fields = await this.fieldsById(input.fields ?? {}, input.confined);
    if (input.project !== undefined) fields.project = { key: input.project };
    if (input.type !== undefined) fields.issuetype = /^\d+$/.test(input.type) ? { id: input.type } : { name: input.type };
    if (input.summary !== undefined) fields.summary = input.summary;
    if (input.description !== undefined) fields.description = this.toText(input.description);
    if (input.priority !== undefined) fields.priority = { name: input.priority };
    if (input.labels !== undefined) fields.labels = input.labels;
    if (input.assignee !== undefined) fields.assignee = this.userRef(await this.resolveUser(input.assignee, 'assignee'));
    if (input.parent !== undefined) fields.parent = { key: input.parent };
    return fields;
  }

  /**
   * The body of a create or edit. Data Center's REST v2 document types every `fields` value as an
   * object, so there text, lists and null go as `update: { field: [{ set: value }] }` (which v2
   * accepts on create and edit alike); Cloud takes them all in `fields`.
   */
  private editBody(fields: Json): Json {
    if (this.cloud) return { fields };
    const objects: Json = {};
    const update: Json = {};
    for (const [name, value] of Object.entries(fields)) {
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) objects[name] = value;
      else update[name] = [{ set: value }];
    }
    return { ...(Object.keys(objects).length ? { fields: objects } : {}), ...(Object.keys(update).length ? { update } : {}) };
  }

  async createIssue(input: IssueInput): Promise<{ key: string; id: string; url: string }> {
    const created = await this.api.api<Json>('POST', '/issue', { body: this.editBody(await this.issueFields(input)) });
    return { key: String(created.key), id: String(created.id), url: this.issueUrl(String(created.key)) };
  }

  async updateIssue(key: string, input: IssueInput): Promise<void> {
    if (input.description !== undefined && !input.replaceRichText) await this.refuseLossyRewrite(key);
    // Only the fields given are sent: a summary edit leaves the description as Jira holds it.
    await this.api.api('PUT', `/issue/${encodeURIComponent(key)}`, { body: this.editBody(await this.issueFields(input)) });
  }

  /** Refuses to rewrite, from Markdown, a description holding what Markdown cannot carry. */
  private async refuseLossyRewrite(key: string): Promise<void> {
    const current = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}`, { query: { fields: 'description' } });
    const description = current.fields?.description;
    const lost = this.cloud ? adfLosses(description) : typeof description === 'string' ? wikiLosses(description) : [];
    if (lost.length) {
      throw invalid('description', `the current description of ${key} holds ${lost.join(', ')}, which a Markdown description cannot carry: rewriting it would lose them. Leave description out to keep it, or pass replace_rich_text: true to replace it anyway`);
    }
  }

  async deleteIssue(key: string, deleteSubtasks: boolean): Promise<void> {
    await this.api.api('DELETE', `/issue/${encodeURIComponent(key)}`, { query: { deleteSubtasks: String(deleteSubtasks) } });
  }

  // ---- workflow ----

  async listTransitions(key: string): Promise<Transition[]> {
    const result = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}/transitions`);
    return ((result.transitions ?? []) as Json[]).map((t) => this.transition(t));
  }

  async transitionIssue(key: string, input: TransitionInput): Promise<Transition> {
    const available = await this.listTransitions(key);
    const wanted = (input.id ?? input.name ?? '').toLowerCase();
    const chosen = available.find((t) => t.id === input.id) ??
      available.find((t) => t.name.toLowerCase() === wanted) ??
      available.find((t) => t.to?.toLowerCase() === wanted);
    if (!chosen) {
      const names = available.map((t) => `${t.name} (id ${t.id}${t.to ? ` → ${t.to}` : ''})`).join(', ') || 'none';
      throw invalid('transition', `${key} has no transition "${input.id ?? input.name}" now; available: ${names}`);
    }
    await this.api.api('POST', `/issue/${encodeURIComponent(key)}/transitions`, {
      body: {
        transition: { id: chosen.id },
        ...(input.fields ? { fields: await this.fieldsById(input.fields, input.confined) } : {}),
        ...(input.comment ? { update: { comment: [{ add: { body: this.toText(input.comment) } }] } } : {}),
      },
    });
    return chosen;
  }

  async assignIssue(key: string, who: string | null): Promise<Account | null> {
    if (who === null) {
      // The documented way to unassign: the assignee field set to null (the assignee resource's
      // body requires a user).
      await this.api.api('PUT', `/issue/${encodeURIComponent(key)}`, { body: this.editBody({ assignee: null }) });
      return null;
    }
    const account = await this.resolveUser(who, 'assignee');
    await this.api.api('PUT', `/issue/${encodeURIComponent(key)}/assignee`, { body: this.userRef(account) });
    return account;
  }

  // ---- comments ----

  async listComments(key: string, page: PageRequest): Promise<Page<Comment>> {
    const startAt = decodeOffset(page.cursor);
    const result = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}/comment`, { query: { startAt, maxResults: page.limit } });
    return offsetPage(((result.comments ?? []) as Json[]).map((c) => this.comment(c)), startAt, result.total);
  }

  async addComment(key: string, markdown: string): Promise<Comment> {
    return this.comment(await this.api.api<Json>('POST', `/issue/${encodeURIComponent(key)}/comment`, { body: { body: this.toText(markdown) } }));
  }

  async editComment(key: string, commentId: string, markdown: string): Promise<Comment> {
    return this.comment(await this.api.api<Json>('PUT', `/issue/${encodeURIComponent(key)}/comment/${encodeURIComponent(commentId)}`, { body: { body: this.toText(markdown) } }));
  }

  // ---- metadata ----

  private project(p: Json): Project {
    return {
      key: String(p.key),
      id: String(p.id),
      name: String(p.name ?? ''),
      url: `${this.api.endpoint.siteUrl}/browse/${p.key}`,
      ...(p.description !== undefined ? { description: truncate(String(p.description ?? ''), DESCRIPTION_MAX) } : {}),
      ...(p.lead ? { lead: this.account(p.lead) } : {}),
      ...(Array.isArray(p.issueTypes) ? { issue_types: (p.issueTypes as Json[]).map((t) => ({ id: String(t.id), name: String(t.name), subtask: Boolean(t.subtask) })) } : {}),
    };
  }

  async listProjects(page: PageRequest & { query?: string | undefined }): Promise<Page<Project>> {
    const startAt = decodeOffset(page.cursor);
    if (this.cloud) {
      const result = await this.api.api<Json>('GET', '/project/search', { query: { startAt, maxResults: page.limit, ...(page.query ? { query: page.query } : {}) } });
      const values = (result.values ?? []) as Json[];
      return { items: values.map((p) => this.project(p)), nextCursor: result.isLast === false ? encodeOffset(startAt + values.length) : null, total: result.total ?? null };
    }
    // Data Center lists every project at once; filter and page here.
    const all = (await this.api.api<Json[]>('GET', '/project')).filter((p) => !page.query || `${p.key} ${p.name}`.toLowerCase().includes(page.query.toLowerCase()));
    return slicePage(all.map((p) => this.project(p)), startAt, page.limit);
  }

  async getProject(key: string): Promise<Project> {
    return this.project(await this.api.api<Json>('GET', `/project/${encodeURIComponent(key)}`));
  }

  async listIssueTypes(project: string): Promise<Named[]> {
    const result = await this.api.api<Json>('GET', `/issue/createmeta/${encodeURIComponent(project)}/issuetypes`, { query: { maxResults: 100 } });
    return ((result.issueTypes ?? result.values ?? []) as Json[]).map((t) => ({ id: String(t.id), name: String(t.name), description: t.description ?? null }));
  }

  async createFields(project: string, issueType: string): Promise<FieldInfo[]> {
    let typeId = issueType;
    if (!/^\d+$/.test(issueType)) {
      const type = (await this.listIssueTypes(project)).find((t) => t.name.toLowerCase() === issueType.toLowerCase());
      if (!type) throw invalid('issue_type', `project ${project} has no issue type "${issueType}"`);
      typeId = type.id;
    }
    const result = await this.api.api<Json>('GET', `/issue/createmeta/${encodeURIComponent(project)}/issuetypes/${encodeURIComponent(typeId)}`, { query: { maxResults: 200 } });
    return ((result.fields ?? result.values ?? []) as Json[]).map((f) => ({
      id: String(f.fieldId ?? f.key),
      name: String(f.name),
      type: f.schema?.type ?? null,
      required: Boolean(f.required),
      ...(Array.isArray(f.allowedValues) ? { allowed_values: (f.allowedValues as Json[]).slice(0, 50).map((v) => String(v.name ?? v.value ?? v.id)) } : {}),
    }));
  }

  async searchFields(query: string | undefined): Promise<FieldInfo[]> {
    const fields = await this.api.api<Json[]>('GET', '/field');
    const lower = query?.toLowerCase();
    return fields
      .filter((f) => !lower || String(f.name).toLowerCase().includes(lower) || String(f.id).toLowerCase().includes(lower))
      .map((f) => ({ id: String(f.id), name: String(f.name), type: f.schema?.type ?? null, custom: Boolean(f.custom) }));
  }

  async listStatuses(project: string | undefined): Promise<Named[]> {
    if (project) {
      const byType = await this.api.api<Json[]>('GET', `/project/${encodeURIComponent(project)}/statuses`);
      const seen = new Map<string, Named>();
      for (const type of byType) for (const s of (type.statuses ?? []) as Json[]) seen.set(String(s.id), { id: String(s.id), name: String(s.name), description: s.description ?? null });
      return [...seen.values()];
    }
    return (await this.api.api<Json[]>('GET', '/status')).map((s) => ({ id: String(s.id), name: String(s.name), description: s.description ?? null }));
  }

  async listPriorities(): Promise<Named[]> {
    return (await this.api.api<Json[]>('GET', '/priority')).map((p) => ({ id: String(p.id), name: String(p.name), description: p.description ?? null }));
  }

  // ---- links ----

  async listLinkTypes(): Promise<LinkType[]> {
    const result = await this.api.api<Json>('GET', '/issueLinkType');
    return ((result.issueLinkTypes ?? []) as Json[]).map((t) => ({ id: String(t.id), name: String(t.name), inward: String(t.inward), outward: String(t.outward) }));
  }

  async linkIssues(input: { type: string; from: string; to: string; comment?: string | undefined }): Promise<void> {
    // "from <outward> to": e.g. A blocks B is outward A, inward B.
    await this.api.api('POST', '/issueLink', {
      body: {
        type: { name: input.type },
        outwardIssue: { key: input.from },
        inwardIssue: { key: input.to },
        ...(input.comment ? { comment: { body: this.toText(input.comment) } } : {}),
      },
    });
  }

  async addRemoteLink(key: string, link: { url: string; title: string; summary?: string | undefined }): Promise<{ id: string }> {
    const result = await this.api.api<Json>('POST', `/issue/${encodeURIComponent(key)}/remotelink`, {
      body: { object: { url: link.url, title: link.title, ...(link.summary ? { summary: link.summary } : {}) } },
    });
    return { id: String(result.id) };
  }

  async setParent(key: string, parent: string | null): Promise<void> {
    if (!this.cloud) throw unsupported(this.label, 'Changing an issue\'s parent', 'Jira Data Center only sets a sub-task\'s parent when it is created (create_issue with parent)');
    await this.api.api('PUT', `/issue/${encodeURIComponent(key)}`, { body: this.editBody({ parent: parent ? { key: parent } : null }) });
  }

  // ---- agile ----

  async listBoards(page: PageRequest & { project?: string | undefined }): Promise<Page<Board>> {
    const startAt = decodeOffset(page.cursor);
    const result = await this.api.agile<Json>('GET', '/board', { query: { startAt, maxResults: page.limit, ...(page.project ? { projectKeyOrId: page.project } : {}) } });
    const values = (result.values ?? []) as Json[];
    return {
      items: values.map((b) => ({ id: String(b.id), name: String(b.name), type: b.type ?? null, project: b.location?.projectKey ?? null })),
      nextCursor: result.isLast === false ? encodeOffset(startAt + values.length) : null,
    };
  }

  async listSprints(boardId: string, page: PageRequest & { state?: string | undefined }): Promise<Page<Sprint>> {
    const startAt = decodeOffset(page.cursor);
    const result = await this.api.agile<Json>('GET', `/board/${encodeURIComponent(boardId)}/sprint`, { query: { startAt, maxResults: page.limit, ...(page.state ? { state: page.state } : {}) } });
    const values = (result.values ?? []) as Json[];
    return {
      items: values.map((s) => ({ id: String(s.id), name: String(s.name), state: s.state ?? null, start: s.startDate ?? null, end: s.endDate ?? null, goal: s.goal ?? null })),
      nextCursor: result.isLast === false ? encodeOffset(startAt + values.length) : null,
    };
  }

  async sprintIssues(sprintId: string, page: PageRequest & { fields?: string[] | undefined }): Promise<Page<Issue>> {
    const startAt = decodeOffset(page.cursor);
    const ids = await this.readableFieldIds(page.fields, 'fields');
    const result = await this.api.agile<Json>('GET', `/sprint/${encodeURIComponent(sprintId)}/issue`, {
      query: { startAt, maxResults: page.limit, fields: this.requestedFields(page.fields?.map((name) => ids.get(name) ?? name)).join(',') },
    });
    return offsetPage(((result.issues ?? []) as Json[]).map((raw) => this.issue(raw, page.fields, [], ids)), startAt, result.total);
  }

  async moveToSprint(sprintId: string, keys: string[]): Promise<void> {
    await this.api.agile('POST', `/sprint/${encodeURIComponent(sprintId)}/issue`, { body: { issues: keys } });
  }

  async moveToBacklog(keys: string[]): Promise<void> {
    await this.api.agile('POST', '/backlog/issue', { body: { issues: keys } });
  }

  // ---- worklogs ----

  private worklog(w: Json): Worklog {
    return {
      id: String(w.id),
      author: this.account(w.author),
      time_spent: w.timeSpent ?? null,
      seconds: w.timeSpentSeconds ?? null,
      started: w.started ?? null,
      comment: truncate(this.fromText(w.comment), COMMENT_MAX),
    };
  }

  async listWorklogs(key: string, page: PageRequest): Promise<Page<Worklog>> {
    const startAt = decodeOffset(page.cursor);
    if (this.cloud) {
      const result = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}/worklog`, { query: { startAt, maxResults: page.limit } });
      return offsetPage(((result.worklogs ?? []) as Json[]).map((w) => this.worklog(w)), startAt, result.total);
    }
    // Data Center returns all of an issue's worklogs at once.
    const all = ((await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}/worklog`)).worklogs ?? []) as Json[];
    return slicePage(all.map((w) => this.worklog(w)), startAt, page.limit);
  }

  async addWorklog(key: string, input: { timeSpent: string; started?: string | undefined; comment?: string | undefined }): Promise<Worklog> {
    let started: string | undefined;
    if (input.started) {
      const date = new Date(input.started);
      if (Number.isNaN(date.getTime())) throw invalid('started', 'must be an ISO date-time such as 2026-11-01T09:00:00Z');
      started = date.toISOString().replace('Z', '+0000');
    }
    const result = await this.api.api<Json>('POST', `/issue/${encodeURIComponent(key)}/worklog`, {
      body: { timeSpent: input.timeSpent, ...(started ? { started } : {}), ...(input.comment ? { comment: this.toText(input.comment) } : {}) },
    });
    return this.worklog(result);
  }

  // ---- attachments ----

  private attachment(a: Json): Attachment {
    return {
      id: String(a.id),
      filename: String(a.filename ?? ''),
      mime_type: a.mimeType ?? null,
      size: typeof a.size === 'number' ? a.size : null,
      created: a.created ?? null,
      author: this.account(a.author),
    };
  }

  async listAttachments(key: string): Promise<Attachment[]> {
    const raw = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}`, { query: { fields: 'attachment' } });
    return ((raw.fields?.attachment ?? []) as Json[]).map((a) => this.attachment(a));
  }

  async downloadAttachment(key: string, attachmentId: string, maxBytes: number): Promise<{ attachment: Attachment; data: Buffer }> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    refuseOversize(attachment, maxBytes);
    const options = { binary: true, maxBodyBytes: maxBytes };
    if (this.cloud) {
      // redirect=false: the bytes from the API itself, not a redirect to Atlassian's media host.
      const data = await this.api.api<Buffer>('GET', `/attachment/content/${encodeURIComponent(attachment.id)}`, { ...options, query: { redirect: false } });
      return { attachment, data };
    }
    // Data Center serves the bytes from its attachment servlet (REST v2 has no content resource),
    // on the connection's own site: the URL it reports in `content` is not followed.
    const url = `${this.api.endpoint.apiRoot}/secure/attachment/${encodeURIComponent(attachment.id)}/${encodeURIComponent(attachment.filename)}`;
    return { attachment, data: await this.api.call<Buffer>('GET', '', { ...options, absoluteUrl: url }) };
  }

  async uploadAttachment(key: string, upload: AttachmentUpload): Promise<Attachment> {
    const raw = await multipartBody({ file: { file: upload } });
    const created = await this.api.api<Json[]>('POST', `/issue/${encodeURIComponent(key)}/attachments`, { raw });
    const first = Array.isArray(created) ? created[0] : null;
    if (!first) throw new OpError('upstream_failed', `${this.label} accepted the upload but named no attachment`);
    return this.attachment(first);
  }

  async deleteAttachment(key: string, attachmentId: string): Promise<void> {
    const attachment = attachmentOf(await this.listAttachments(key), key, attachmentId);
    await this.api.api('DELETE', `/attachment/${encodeURIComponent(attachment.id)}`);
  }

  // ---- what bindings name ----

  async bindingProjectOfIssue(key: string, options: { current?: boolean; field?: string } = {}): Promise<string | null> {
    if (!options.current) return jiraProjectOf(key);
    const raw = await this.api.api<Json>('GET', `/issue/${encodeURIComponent(key)}`, { query: { fields: 'project' } });
    return typeof raw.fields?.project?.key === 'string' ? raw.fields.project.key.toUpperCase() : null;
  }

  async bindingProjectOf(project: string): Promise<string> {
    return project.toUpperCase();
  }
}
