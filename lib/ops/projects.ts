import { z } from 'zod';
import { LockMode } from '@mikro-orm/core';
import { Delegation, McpInstallation, Project, ProjectBinding, RoleAssignment, User } from '../db/entities/index.ts';
import type { Em } from '../db/orm.ts';
import { requireAllPermissions } from '../access/guard.ts';
import type { Permission } from '../access/permissions.ts';
import { callerUserId } from '../identity/caller.ts';
import { conflict, OpError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { operation, type OperationContext } from './operation.ts';
import { activeDelegations, findProject } from './lookups.ts';
import { cursorPage, id, isoTime, isoTimeOrNull, userSummaryOutput } from './outputs.ts';
import { limitField, offsetField } from './pagination.ts';
import { displayNameField, projectKeyField } from './schemas.ts';
import { userSummary } from './views.ts';

// Platform projects: the scope role assignments, delegations and installations can be limited to,
// and (through bindings) the tracker projects a project-scoped pm permission covers. Named
// `*_mandate_project*` so they never read as the PM tool list_projects (a tracker's projects).

// A key is matched as stored (upper-case), an id as given.
export const projectRef = z
  .string()
  .trim()
  .min(1, 'must name a project (its key or id)')
  .max(64, 'must be at most 64 characters')
  .transform((ref) => (isUuid(ref) ? ref : ref.toUpperCase()));

const bindingOutput = z.strictObject({ tracker: z.string(), tracker_project: z.string(), created_at: isoTime });
const usageOutput = z.strictObject({ role_assignments: z.number().int(), delegations: z.number().int(), installations: z.number().int() });
export const projectOutput = z.strictObject({
  id,
  key: z.string(),
  name: z.string(),
  created_by_id: id.nullable(),
  created_at: isoTime,
  updated_at: isoTime,
  bindings: z.array(bindingOutput),
  used_by: usageOutput,
});

const countBy = async (em: Em, table: string, extra: string, ids: string[], params: unknown[] = []) =>
  new Map(
    (await em.execute<{ project_id: string; n: string | number }[]>(`select project_id, count(*) as n from ${table} where project_id in (${ids.map(() => '?').join(', ')})${extra} group by project_id`, [...ids, ...params]))
      .map((row) => [row.project_id, Number(row.n)]),
  );

/** Projects as shown: their bindings and what uses them (role assignments, delegations in force, installations), a few queries for a whole page. */
export async function projectViews(em: Em, projects: Project[], now: Date) {
  if (!projects.length) return [];
  const ids = projects.map((p) => p.id);
  const [bindings, assignments, delegations, installations] = await Promise.all([
    em.find(ProjectBinding, { project: { $in: ids } }, { orderBy: { tracker: 'asc', trackerProject: 'asc' } }),
    countBy(em, 'role_assignment', '', ids),
    countBy(em, 'delegation', ' and revoked_at is null and (expires_at is null or expires_at > ?)', ids, [now]),
    countBy(em, 'mcp_installation', '', ids),
  ]);
  return projects.map((project) => ({
    id: project.id,
    key: project.key,
    name: project.name,
    created_by_id: project.createdById ?? null,
    created_at: project.createdAt.toISOString(),
    updated_at: project.updatedAt.toISOString(),
    bindings: bindings.filter((b) => b.project.id === project.id).map((b) => ({ tracker: b.tracker, tracker_project: b.trackerProject, created_at: b.createdAt.toISOString() })),
    used_by: { role_assignments: assignments.get(project.id) ?? 0, delegations: delegations.get(project.id) ?? 0, installations: installations.get(project.id) ?? 0 },
  }));
}

export const projectView = async (em: Em, project: Project, now: Date) => (await projectViews(em, [project], now))[0]!;

const projectTarget = (input: { project: string }) => `project:${input.project}`;

/** The project the input names, which the audit event then names by id (whatever the input named it by). */
async function namedProject(ctx: OperationContext, ref: string): Promise<Project> {
  const project = await findProject(ctx.em, ref, 'project');
  ctx.setTarget(`project:${project.id}`);
  return project;
}

export const createMandateProject = operation({
  name: 'create_mandate_project',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/projects' },
  title: 'Create a project',
  description:
    'Create a Mandate project: the scope roles, delegations and installations can be limited to (assign_role with project_key). key: a letter then letters, digits or "_" (at most 32), stored upper-case, never changed; name: what people call it. ' +
    'Bind tracker projects to it with bind_tracker_project. Returns the project.',
  input: z.strictObject({ key: projectKeyField, name: displayNameField }),
  output: projectOutput,
  permission: 'projects:write',
  effect: 'write',
  annotations: {},
  target: (input) => `project:${input.key}`,
  async run(ctx, input) {
    if (await ctx.em.findOne(Project, { key: input.key })) throw conflict(`a project with key ${input.key} exists already`, 'key');
    const project = ctx.em.create(Project, { key: input.key, name: input.name, createdById: callerUserId(ctx.caller) });
    await ctx.em.flush();
    ctx.setTarget(`project:${project.id}`);
    return projectView(ctx.em, project, ctx.now);
  },
});

export const listMandateProjects = operation({
  name: 'list_mandate_projects',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/projects' },
  title: 'List projects',
  description:
    "List Mandate's projects by key, with their tracker bindings and what uses them; search matches key or name. limit (default 50) and offset page through them. " +
    "Not a tracker's projects: that is the PM tool list_projects.",
  input: z.strictObject({ search: z.string().trim().max(200, 'must be at most 200 characters').optional(), limit: limitField, offset: offsetField }),
  output: z.strictObject({ items: z.array(projectOutput), next_offset: z.number().int().nullable() }),
  permission: 'projects:read',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const offset = input.offset ?? 0;
    const pattern = input.search ? `%${input.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : null;
    const where = pattern ? { $or: [{ key: { $ilike: pattern } }, { name: { $ilike: pattern } }] } : {};
    const rows = await ctx.em.find(Project, where, { orderBy: { key: 'asc' }, limit: input.limit + 1, offset });
    const items = await projectViews(ctx.em, rows.slice(0, input.limit), ctx.now);
    return { items, next_offset: rows.length > input.limit ? offset + input.limit : null };
  },
});

export const getMandateProject = operation({
  name: 'get_mandate_project',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/projects/{project}' },
  title: 'Get a project',
  description: 'Get one Mandate project by key or id: its name, the tracker projects bound to it, and how many role assignments, delegations in force and installations use it.',
  input: z.strictObject({ project: projectRef }),
  output: projectOutput,
  permission: 'projects:read',
  effect: 'read',
  annotations: {},
  target: projectTarget,
  async run(ctx, input) {
    const project = await namedProject(ctx, input.project);
    return projectView(ctx.em, project, ctx.now);
  },
});

export const updateMandateProject = operation({
  name: 'update_mandate_project',
  servers: ['admin'],
  route: { method: 'PATCH', path: '/api/admin/projects/{project}' },
  title: 'Rename a project',
  description: 'Change the name of a Mandate project (its key never changes: grants and audit events name it). Returns the project.',
  input: z.strictObject({ project: projectRef, name: displayNameField }),
  output: projectOutput,
  permission: 'projects:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: projectTarget,
  async run(ctx, input) {
    const project = await namedProject(ctx, input.project);
    project.name = input.name;
    await ctx.em.flush();
    return projectView(ctx.em, project, ctx.now);
  },
});

/**
 * Deleting a project with cascade takes its grants away from their holders and removes its
 * installations: like delete_role, the caller must hold there every permission those grants
 * carry, and installs:admin for installations.
 */
async function requireHoldsWhatCascades(ctx: OperationContext, project: Project) {
  const assignments = await ctx.em.find(RoleAssignment, { project }, { populate: ['role'] });
  const delegations = await ctx.em.find(Delegation, { project, ...activeDelegations(ctx.now) });
  const carried = new Set<string>([...assignments.flatMap((a) => a.role.permissions), ...delegations.map((d) => d.permission)]);
  if ((await ctx.em.count(McpInstallation, { project })) > 0) carried.add('installs:admin');
  const held = await ctx.permissionsIn(project.id);
  if (held) requireAllPermissions(held, [...carried], `deleting project ${project.key} with what uses it`);
}

export const deleteMandateProject = operation({
  name: 'delete_mandate_project',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/projects/{project}' },
  title: 'Delete a project',
  description:
    'Delete a Mandate project and its tracker bindings. Refused while role assignments, delegations or installations use it, unless cascade is true, which removes them too ' +
    '(their holders lose those permissions at once; you must hold every permission they carry there, and installs:admin for installations). Returns what was removed.',
  input: z.strictObject({ project: projectRef, cascade: z.boolean().default(false) }),
  output: projectOutput.extend({ deleted: z.literal(true) }),
  permission: 'projects:write',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: projectTarget,
  async run(ctx, input) {
    // Locked first: a grant added meanwhile waits for this delete (and then fails on the missing
    // project) instead of being removed by the cascade uncounted and unchecked.
    const found = await findProject(ctx.em, input.project, 'project');
    const project = await ctx.em.findOneOrFail(Project, { id: found.id }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
    ctx.setTarget(`project:${project.id}`);
    const view = await projectView(ctx.em, project, ctx.now);
    const { role_assignments, delegations, installations } = view.used_by;
    // Revoked and expired delegations scoped to it do not count as use; they go with it.
    const inUse = role_assignments + delegations + installations;
    if (inUse > 0 && !input.cascade) {
      throw conflict(
        `project ${project.key} is used by ${role_assignments} role assignment(s), ${delegations} delegation(s) in force and ${installations} installation(s); remove them first or pass cascade: true`,
        'cascade',
      );
    }
    if (inUse > 0) await requireHoldsWhatCascades(ctx, project);
    // The foreign keys cascade (assignments, delegations, installations, bindings); the
    // access-change triggers of assignments and delegations report their holders.
    await ctx.em.nativeDelete(Project, { id: project.id });
    return { ...view, deleted: true as const };
  },
});

const memberGrantOutput = z.discriminatedUnion('via', [
  z.strictObject({ via: z.literal('role'), role: z.string(), assignment_id: id, permissions: z.array(z.string()) }),
  z.strictObject({ via: z.literal('delegation'), delegation_id: id, permission: z.string(), delegator_id: id, expires_at: isoTimeOrNull }),
]);

export const listMandateProjectMembers = operation({
  name: 'list_mandate_project_members',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/projects/{project}/members' },
  title: 'List the members of a project',
  description:
    'Who holds what in a Mandate project, and through what: each user with a role assigned for the project or a delegation in force scoped to it, by user name. ' +
    'Global grants apply in every project too and are not listed here (see list_role_members). limit (default 50) and offset page through the users.',
  input: z.strictObject({ project: projectRef, limit: limitField, offset: offsetField }),
  output: z.strictObject({
    project_key: z.string(),
    items: z.array(z.strictObject({ user: userSummaryOutput, grants: z.array(memberGrantOutput) })),
    next_offset: z.number().int().nullable(),
  }),
  permission: 'projects:read',
  effect: 'read',
  annotations: {},
  target: projectTarget,
  async run(ctx, input) {
    const project = await namedProject(ctx, input.project);
    const offset = input.offset ?? 0;
    const members = await ctx.em.execute<{ user_id: string }[]>(
      `select u.id as user_id from app_user u
        where exists (select 1 from role_assignment ra where ra.user_id = u.id and ra.project_id = ?)
           or exists (select 1 from delegation d where d.delegate_id = u.id and d.project_id = ? and d.revoked_at is null and (d.expires_at is null or d.expires_at > ?))
        order by u.name, u.id limit ? offset ?`,
      [project.id, project.id, ctx.now, input.limit + 1, offset],
    );
    const ids = members.slice(0, input.limit).map((m) => m.user_id);
    const [users, assignments, delegations] = ids.length
      ? await Promise.all([
          ctx.em.find(User, { id: { $in: ids } }),
          ctx.em.find(RoleAssignment, { project, user: { $in: ids } }, { populate: ['role'], orderBy: { createdAt: 'asc', id: 'asc' } }),
          ctx.em.find(Delegation, { project, delegate: { $in: ids }, ...activeDelegations(ctx.now) }, { orderBy: { createdAt: 'asc', id: 'asc' } }),
        ])
      : [[], [], []];
    const byId = new Map(users.map((u) => [u.id, u]));
    const items = ids.map((userId) => ({
      user: userSummary(byId.get(userId)!),
      grants: [
        ...assignments.filter((a) => a.user.id === userId).map((a) => ({ via: 'role' as const, role: a.role.name, assignment_id: a.id, permissions: [...a.role.permissions] as Permission[] })),
        ...delegations
          .filter((d) => d.delegate.id === userId)
          .map((d) => ({ via: 'delegation' as const, delegation_id: d.id, permission: d.permission, delegator_id: d.delegator.id, expires_at: d.expiresAt?.toISOString() ?? null })),
      ],
    }));
    return { project_key: project.key, items, next_offset: members.length > input.limit ? offset + input.limit : null };
  },
});

// Trackers bindings are offered for, and how each names a tracker project: Jira by its key (an
// issue key says its project), Redmine by its identifier, OpenProject by its numeric id (an issue
// number says neither: the guard reads the issue's project first).
export const BINDABLE_TRACKERS = ['jira', 'redmine', 'openproject'] as const;
const trackerField = z.enum(BINDABLE_TRACKERS, { message: `must be one of: ${BINDABLE_TRACKERS.join(', ')}` });
const TRACKER_PROJECT: Record<(typeof BINDABLE_TRACKERS)[number], { pattern: RegExp; normal: (text: string) => string; says: string }> = {
  jira: { pattern: /^[A-Z][A-Z0-9_]{0,99}$/, normal: (text) => text.toUpperCase(), says: 'a Jira project key: a letter then letters, digits or "_"' },
  redmine: { pattern: /^(?!\d+$)[a-z0-9_-]{1,100}$/, normal: (text) => text.toLowerCase(), says: 'a Redmine project identifier: lowercase letters, digits, "-" and "_", not only digits' },
  openproject: { pattern: /^[1-9]\d{0,17}$/, normal: (text) => text, says: 'an OpenProject project id (a number; GET /api/v3/projects/<identifier> shows it)' },
};
const bindingInput = z
  .strictObject({
    project: projectRef,
    tracker: trackerField,
    tracker_project: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters')
      .describe('Jira: the project key (ACME); Redmine: the project identifier (acme-web); OpenProject: the project id (42)'),
  })
  .superRefine((input, issue) => {
    const rule = TRACKER_PROJECT[input.tracker];
    if (!rule.pattern.test(rule.normal(input.tracker_project))) issue.addIssue({ code: 'custom', path: ['tracker_project'], message: `must be ${rule.says}` });
  });
const trackerProjectOf = (input: z.output<typeof bindingInput>) => TRACKER_PROJECT[input.tracker].normal(input.tracker_project);

export const bindTrackerProject = operation({
  name: 'bind_tracker_project',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/admin/projects/{project}/bindings' },
  title: 'Bind a tracker project to a project',
  description:
    'Bind a tracker project (tracker "jira" with its key, e.g. ACME; "redmine" with its identifier; "openproject" with its id) to a Mandate project. From then on a PM call on that tracker project (its issues, or the project itself) needs the pm permission in the Mandate project ' +
    '(a global grant still covers it), and searches by someone without a global grant are confined to the tracker projects bound where they hold it. A tracker project is bound to one Mandate project at most. Idempotent. Returns the project.',
  input: bindingInput,
  output: projectOutput,
  permission: 'projects:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: projectTarget,
  async run(ctx, input) {
    const project = await namedProject(ctx, input.project);
    const trackerProject = trackerProjectOf(input);
    const existing = await ctx.em.findOne(ProjectBinding, { tracker: input.tracker, trackerProject }, { populate: ['project'] });
    if (existing && existing.project.id !== project.id) {
      throw conflict(`${input.tracker} project ${trackerProject} is bound to project ${existing.project.key} already; unbind it there first`, 'tracker_project');
    }
    if (!existing) {
      ctx.em.create(ProjectBinding, { project, tracker: input.tracker, trackerProject, createdById: callerUserId(ctx.caller) });
      await ctx.em.flush();
    }
    return projectView(ctx.em, project, ctx.now);
  },
});

export const unbindTrackerProject = operation({
  name: 'unbind_tracker_project',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/admin/projects/{project}/bindings' },
  title: 'Unbind a tracker project',
  description:
    'Remove the binding of a tracker project to a Mandate project: calls on it then need a global pm grant again (project-scoped grants no longer reach it). Returns the project.',
  input: bindingInput,
  output: projectOutput,
  permission: 'projects:write',
  effect: 'write',
  annotations: { destructiveHint: true, idempotentHint: true },
  target: projectTarget,
  async run(ctx, input) {
    const project = await namedProject(ctx, input.project);
    const trackerProject = trackerProjectOf(input);
    const removed = await ctx.em.nativeDelete(ProjectBinding, { project, tracker: input.tracker, trackerProject });
    if (!removed) throw new OpError('not_found', `${input.tracker} project ${trackerProject} is not bound to project ${project.key}`, { field: 'tracker_project' });
    return projectView(ctx.em, project, ctx.now);
  },
});
