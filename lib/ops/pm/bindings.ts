import { BINDINGS_CHANGE_SUBJECT, ProjectBinding, type PmConnection, type Project, type TrackerKind } from '../../db/entities/index.ts';
import type { Permission } from '../../access/permissions.ts';
import { OpError } from '../../errors.ts';
import { callerUserId } from '../../identity/caller.ts';
import type { OperationContext } from '../operation.ts';
import type { Tracker } from '../../pm/provider.ts';
import { isUnseen } from '../../pm/errors.ts';

// The binding guard of the PM tools: a call on a tracker project bound to a Mandate project needs
// the pm permission in that project; on an unbound one, a global grant. A global grant covers
// everything, so its holders pay nothing here.

/**
 * What a call touches, as a tool declares it:
 * - issues / projects: the issue keys and tracker project keys it acts on;
 * - `search`: whatever the tracker returns, confined to the tracker projects the caller may read;
 * - `tracker`: nothing of any project (priorities, link types, fields, users): a grant in any project will do;
 * - `global`: more than one project can say (boards, sprints, every project): a global grant only.
 */
export type TrackerScope = { issues?: readonly (IssueRef | undefined)[]; projects?: readonly (string | undefined)[] } | 'search' | 'tracker' | 'global';
/** An issue key, or one with the input field it came from (for errors about it). */
export type IssueRef = string | { key: string | undefined; field: string };

const TRACKER_OF: Record<PmConnection['provider'], TrackerKind> = { jira_cloud: 'jira', jira_dc: 'jira', redmine: 'redmine', openproject: 'openproject' };

interface Binding {
  trackerProject: string;
  project: { id: string; key: string };
}

/** A tracker's bindings, cached in this process until a binding changes anywhere (the access-change feed). */
function bindingsOf(ctx: OperationContext, tracker: TrackerKind): Promise<Binding[]> {
  return ctx.memo(BINDINGS_CHANGE_SUBJECT, tracker, async () => {
    const rows = await ctx.em.find(ProjectBinding, { tracker }, { populate: ['project'] });
    return rows.map((row) => ({ trackerProject: row.trackerProject, project: { id: row.project.id, key: (row.project as Project).key } }));
  });
}

export interface Guarded {
  /** A search's confinement: the tracker projects it may return (undefined: not confined). */
  confinedTo?: readonly string[];
  /** The tracker projects the call was allowed on (undefined: any, a global grant or no project). */
  allowed?: ReadonlySet<string>;
  /** Whether the caller may act on a tracker project with the call's permission (undefined: anywhere, a global grant). */
  mayActOn?: (trackerProject: string) => Promise<boolean>;
}

export interface GuardOptions {
  /**
   * Jira finds a moved issue by its old key: unless the call checks its answer's project
   * (requireAnsweredWithin), a confined caller's issues are looked up first to know where they are now.
   */
  confirmIssueProjects: boolean;
}

/**
 * Refuses a call on a tracker project the caller may not act on with `permission`, before the
 * call's own requests; says what a search is confined to and which tracker projects the call was
 * allowed on. A Jira issue key names its project; a Redmine or OpenProject issue number does not,
 * so there the issue's project is read first (for callers without a global grant only).
 */
export async function guardTrackerScope(ctx: OperationContext, operation: string, permission: Permission, scope: TrackerScope, connection: PmConnection, tracker: Tracker, options: GuardOptions): Promise<Guarded> {
  // Through a lent connection (an agent's, its spawner's) only what the owner delegated counts:
  // a grant from anyone else never rides on the owner's credential.
  const lentBy = connection.user.id !== callerUserId(ctx.caller) ? connection.user.id : null;
  const holdsIn = async (projectId: string | null) => {
    const effective = await ctx.permissionsIn(projectId);
    if (!effective) return true;
    return (effective.grants.get(permission) ?? []).some((source) => lentBy === null || (source.kind === 'delegation' && source.delegatorId === lentBy));
  };
  if (await holdsIn(null)) return {};
  // Admitted on the grant held anywhere; a lent connection is chosen only while its owner
  // delegated the permission (lentConnections), so nothing is left to check here.
  if (scope === 'tracker') return {};
  const needsGlobal = (why: string) => new OpError('forbidden', `permission denied: ${operation} needs ${permission} globally (${why})`);
  if (scope === 'global') throw needsGlobal('it is not confined to one tracker project');
  const kind = TRACKER_OF[connection.provider];
  const bindings = await bindingsOf(ctx, kind);
  if (scope === 'search') {
    const readable: string[] = [];
    for (const binding of bindings) if (await holdsIn(binding.project.id)) readable.push(binding.trackerProject);
    if (!readable.length) throw needsGlobal('you hold it in no project bound to tracker projects');
    return { confinedTo: readable.sort() };
  }
  const byKey = new Map(bindings.map((binding) => [binding.trackerProject, binding.project]));
  const mayActOn = async (trackerProject: string) => {
    const bound = byKey.get(trackerProject);
    return bound !== undefined && (await holdsIn(bound.id));
  };
  const requireOn = async (trackerProject: string, why = '') => {
    const bound = byKey.get(trackerProject);
    if (!bound) throw needsGlobal(`${why}tracker project ${trackerProject} is bound to no project`);
    if (!(await holdsIn(bound.id))) {
      throw new OpError('forbidden', `permission denied: ${operation} needs ${permission} in project ${bound.key}${why ? ` (${why.replace(/: $/, '')})` : ''}${lentBy ? ', delegated by the owner of the connection it uses' : ''}`);
    }
  };
  const touched = new Set<string>();
  const issues = (scope.issues ?? [])
    .map((ref) => (typeof ref === 'object' ? ref : { key: ref, field: 'key' }))
    .filter((ref): ref is { key: string; field: string } => ref.key !== undefined);
  // An issue named in another input (parent, to) that the tracker does not show is refused on that input.
  const lookUp = (key: string, field: string, options: { current?: boolean } = {}) =>
    tracker.bindingProjectOfIssue(key, { field, ...options }).catch((error: unknown) => {
      if (field !== 'key' && isUnseen(error)) {
        throw new OpError('not_found', `issue ${key} (${field}) is not found, or your tracker account cannot see it`, { field });
      }
      throw error;
    });
  const named = new Map<string, string>();
  for (const { key, field } of issues) {
    const project = await lookUp(key, field);
    if (!project) throw needsGlobal(`issue ${key} is not named by a key that says its project`);
    named.set(key, project);
    touched.add(project);
  }
  for (const key of scope.projects ?? []) if (key !== undefined) touched.add(await tracker.bindingProjectOf(key));
  // First on what the call names, with no request on Jira: a refused call never reaches the tracker.
  for (const trackerProject of touched) await requireOn(trackerProject);
  if (kind === 'jira' && options.confirmIssueProjects) {
    for (const { key, field } of issues) {
      const now = await lookUp(key, field, { current: true });
      if (now !== null && now !== named.get(key)) {
        await requireOn(now, `issue ${key} is in tracker project ${now} now: `);
        touched.add(now);
      }
    }
  }
  // Only a Jira answer can name another project than the one checked (a moved issue's old key).
  return kind === 'jira' ? { allowed: touched, mayActOn } : { mayActOn };
}

/**
 * Jira answers an issue moved to another project under its old key too: an answer naming a
 * project the call was not allowed on is refused (for callers the guard confined).
 */
export function requireAnsweredWithin(result: unknown, guarded: Guarded, operation: string): void {
  if (!guarded.allowed || result === null || typeof result !== 'object') return;
  const project = (result as { project?: unknown }).project;
  if (typeof project === 'string' && !guarded.allowed.has(project.toUpperCase())) {
    throw new OpError('forbidden', `permission denied: ${operation} reached an issue of tracker project ${project} (moved there), which you may not act on; nothing is shown`);
  }
}
