import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';

const ProjectSchema = defineEntity({
  name: 'Project',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    key: p.string().length(32).unique('project_key_unique'),
    name: p.string().length(200),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
});

export class Project extends ProjectSchema.class {}
ProjectSchema.setClass(Project);
export { ProjectSchema };
