import type { PmProvider } from '../db/entities/index.ts';
import { invalid } from '../errors.ts';

// What every tracker offers the PM tools, in the tools' own vocabulary: keys, Markdown texts,
// opaque cursors. A tracker that lacks a feature throws `unsupported(...)` (a clear tool error).

export interface Account {
  id: string;
  name: string;
  email?: string | null;
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass back as `cursor` for the next page. */
  nextCursor: string | null;
  total?: number | null;
}

export interface PageRequest {
  limit: number;
  cursor?: string | undefined;
}

export interface IssueSearch extends PageRequest {
  /** The tracker's own query language (JQL; Redmine/OpenProject: not supported). */
  query?: string | undefined;
  project?: string | undefined;
  /** An account id, email, name, or "me". */
  assignee?: string | undefined;
  status?: string | undefined;
  text?: string | undefined;
  /** ISO date or date-time. */
  updatedSince?: string | undefined;
  fields?: string[] | undefined;
  /** Only issues of these tracker projects (the binding guard's confinement, applied in the query itself so paging stays right). */
  confineTo?: readonly string[] | undefined;
}

export type IssueInclude = 'comments' | 'transitions' | 'links' | 'subtasks' | 'history';

export interface Issue {
  key: string;
  id: string;
  url: string;
  summary: string;
  status: string | null;
  type: string | null;
  priority: string | null;
  assignee: Account | null;
  reporter: Account | null;
  project: string | null;
  parent: string | null;
  labels: string[];
  created: string | null;
  updated: string | null;
  /** Markdown. */
  description: string | null;
  /** Further fields asked for by name, as the tracker returned them. */
  fields?: Record<string, unknown>;
  comments?: Comment[];
  transitions?: Transition[];
  links?: IssueLink[];
  subtasks?: { key: string; summary: string; status: string | null }[];
  history?: { at: string; author: string | null; changes: { field: string; from: string | null; to: string | null }[] }[];
}

export interface Comment {
  id: string;
  author: Account | null;
  /** Markdown. */
  body: string;
  created: string | null;
  updated: string | null;
}

export interface Transition {
  id: string;
  name: string;
  to: string | null;
}

export interface IssueLink {
  id: string;
  type: string;
  direction: 'inward' | 'outward';
  /** How the link reads from this issue, e.g. "blocks". */
  relation: string;
  issue: string;
}

export interface IssueInput {
  project?: string;
  type?: string;
  summary?: string;
  /** Markdown. */
  description?: string;
  priority?: string;
  labels?: string[];
  assignee?: string;
  parent?: string;
  /** Further tracker fields by id, passed through. */
  fields?: Record<string, unknown>;
  /**
   * An edit's description replaces rich text Markdown cannot carry (panels, mentions, ...) only
   * when this is true; otherwise such an edit is refused, naming what would be lost.
   */
  replaceRichText?: boolean;
  /** The caller is confined by project bindings: fields reaching other issues or sprints are refused. */
  confined?: boolean;
}

export interface TransitionInput {
  id?: string;
  name?: string;
  fields?: Record<string, unknown>;
  comment?: string;
  /** As IssueInput's. */
  confined?: boolean;
}

export interface Project {
  key: string;
  id: string;
  name: string;
  url?: string | null;
  description?: string | null;
  lead?: Account | null;
  issue_types?: { id: string; name: string; subtask: boolean }[];
}

export interface FieldInfo {
  id: string;
  name: string;
  type: string | null;
  required?: boolean;
  allowed_values?: string[];
  custom?: boolean;
}

export interface Named {
  id: string;
  name: string;
  description?: string | null;
}

export interface Board {
  id: string;
  name: string;
  type: string | null;
  project: string | null;
}

export interface Sprint {
  id: string;
  name: string;
  state: string | null;
  start: string | null;
  end: string | null;
  goal: string | null;
}

export interface Worklog {
  id: string;
  author: Account | null;
  time_spent: string | null;
  seconds: number | null;
  started: string | null;
  comment: string;
}

export interface LinkType {
  id: string;
  name: string;
  inward: string;
  outward: string;
}

export interface Attachment {
  id: string;
  filename: string;
  mime_type: string | null;
  size: number | null;
  created: string | null;
  author: Account | null;
}

export interface AttachmentUpload {
  filename: string;
  mimeType: string;
  data: Buffer;
}

export interface Tracker {
  readonly provider: PmProvider;
  whoami(): Promise<Account>;
  searchIssues(search: IssueSearch): Promise<Page<Issue>>;
  /** confined: the caller is confined by project bindings, so fields carrying other issues are refused. */
  getIssue(key: string, options: { fields?: string[] | undefined; include: IssueInclude[]; confined?: boolean }): Promise<Issue>;
  createIssue(input: IssueInput): Promise<{ key: string; id: string; url: string }>;
  updateIssue(key: string, input: IssueInput): Promise<void>;
  deleteIssue(key: string, deleteSubtasks: boolean): Promise<void>;
  listTransitions(key: string): Promise<Transition[]>;
  transitionIssue(key: string, input: TransitionInput): Promise<Transition>;
  /** who: an account id, email, name, "me", or null to unassign. Returns the account assigned. */
  assignIssue(key: string, who: string | null): Promise<Account | null>;
  listComments(key: string, page: PageRequest): Promise<Page<Comment>>;
  addComment(key: string, markdown: string): Promise<Comment>;
  editComment(key: string, commentId: string, markdown: string): Promise<Comment>;
  listProjects(page: PageRequest & { query?: string | undefined }): Promise<Page<Project>>;
  getProject(key: string): Promise<Project>;
  listIssueTypes(project: string): Promise<Named[]>;
  createFields(project: string, issueType: string): Promise<FieldInfo[]>;
  searchFields(query: string | undefined): Promise<FieldInfo[]>;
  listStatuses(project: string | undefined): Promise<Named[]>;
  listPriorities(): Promise<Named[]>;
  searchUsers(query: string, limit: number): Promise<Account[]>;
  listLinkTypes(): Promise<LinkType[]>;
  linkIssues(input: { type: string; from: string; to: string; comment?: string | undefined }): Promise<void>;
  addRemoteLink(key: string, link: { url: string; title: string; summary?: string | undefined }): Promise<{ id: string }>;
  setParent(key: string, parent: string | null): Promise<void>;
  listBoards(page: PageRequest & { project?: string | undefined }): Promise<Page<Board>>;
  listSprints(boardId: string, page: PageRequest & { state?: string | undefined }): Promise<Page<Sprint>>;
  sprintIssues(sprintId: string, page: PageRequest & { fields?: string[] | undefined }): Promise<Page<Issue>>;
  moveToSprint(sprintId: string, keys: string[]): Promise<void>;
  moveToBacklog(keys: string[]): Promise<void>;
  listWorklogs(key: string, page: PageRequest): Promise<Page<Worklog>>;
  addWorklog(key: string, input: { timeSpent: string; started?: string | undefined; comment?: string | undefined }): Promise<Worklog>;
  listAttachments(key: string): Promise<Attachment[]>;
  /** One of the issue's attachments (another issue's is not found) and its bytes; one larger than maxBytes is refused before it is downloaded. */
  downloadAttachment(key: string, attachmentId: string, maxBytes: number): Promise<{ attachment: Attachment; data: Buffer }>;
  uploadAttachment(key: string, upload: AttachmentUpload): Promise<Attachment>;
  /** Deletes one of the issue's attachments (another issue's is not found). */
  deleteAttachment(key: string, attachmentId: string): Promise<void>;
  /**
   * The tracker project of an issue as bindings name it (Jira: the key's prefix, with no request,
   * null for a numeric id, or with `current` the project Jira has it in now, a moved issue's new
   * one; Redmine: the project's identifier; OpenProject: the project's id).
   */
  bindingProjectOfIssue(key: string, options?: { current?: boolean; field?: string }): Promise<string | null>;
  /** A project given in input (key, identifier or id) as bindings name it. */
  bindingProjectOf(project: string): Promise<string>;
}

/** Offset cursors: opaque to callers, but simple. */
export function encodeOffset(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

export const badCursor = () => invalid('cursor', 'not a cursor this tool returned; pass next_cursor from the previous page unchanged');

export function decodeOffset(cursor: string | undefined): number {
  if (!cursor) return 0;
  const match = /^o:(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw badCursor();
  return Number(match[1]);
}

/** A page the tracker cut at `startAt`, of `total` in all. */
export function offsetPage<T>(items: T[], startAt: number, total: unknown): Page<T> {
  const next = startAt + items.length;
  return { items, nextCursor: items.length && next < Number(total ?? 0) ? encodeOffset(next) : null, total: (total as number | null | undefined) ?? null };
}

/** A page cut here from everything the tracker returned at once. */
export function slicePage<T>(all: T[], startAt: number, limit: number): Page<T> {
  const items = all.slice(startAt, startAt + limit);
  return { items, nextCursor: startAt + items.length < all.length ? encodeOffset(startAt + items.length) : null, total: all.length };
}
