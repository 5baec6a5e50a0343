import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';

const ProjectSchema = defineEntity({
  name: 'Project',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    // Immutable once created: scoped grants, audit events and tool inputs name projects by key.
    key: p.string().length(32).unique('project_key_unique'),
    name: p.string().length(200),
    createdById: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
});

export class Project extends ProjectSchema.class {}
ProjectSchema.setClass(Project);
export { ProjectSchema };
