import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { Project } from './project.ts';

/** The tracker families a binding names projects of (Jira Cloud and Data Center share project keys). */
export const TRACKER_KINDS = ['jira', 'redmine', 'openproject'] as const;
export type TrackerKind = (typeof TRACKER_KINDS)[number];

/**
 * The id every binding change reports to the access-change feed, so processes that cached the
 * bindings drop them at their next check (lib/ops/pm/bindings.ts memoises them under it).
 */
export const BINDINGS_CHANGE_SUBJECT = '00000000-0000-4000-8000-0000b1d10000';

// A tracker project (a Jira key, a Redmine identifier, an OpenProject id) bound to a Mandate
// project: PM calls on it need the pm permission for that Mandate project. A tracker project
// belongs to one Mandate project at most, so the permission a call needs is never ambiguous.
const ProjectBindingSchema = defineEntity({
  name: 'ProjectBinding',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    project: () => p.manyToOne(Project).deleteRule('cascade').index('project_binding_project_idx'),
    tracker: p.string().length(32),
    trackerProject: p.string().length(200),
    createdById: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ name: 'project_binding_tracker_unique', properties: ['tracker', 'trackerProject'] }],
  triggers: [{ name: 'project_binding_access_change', timing: 'after', events: ['insert', 'update', 'delete'], forEach: 'row', body: `perform "access_changed"('${BINDINGS_CHANGE_SUBJECT}'); return null;` }],
});

export class ProjectBinding extends ProjectBindingSchema.class {}
ProjectBindingSchema.setClass(ProjectBinding);
export { ProjectBindingSchema };
