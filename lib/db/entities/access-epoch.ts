import { defineEntity, p } from '@mikro-orm/core';

// A single row whose version database triggers bump on every change that can alter someone's
// permissions; caches of resolved permissions are valid while the version they saw is current.
const AccessEpochSchema = defineEntity({
  name: 'AccessEpoch',
  properties: {
    id: p.integer().primary().autoincrement(false),
    version: p.bigint('number').default(0),
  },
});

export class AccessEpoch extends AccessEpochSchema.class {}
AccessEpochSchema.setClass(AccessEpoch);
export { AccessEpochSchema };

/** The trigger body shared by every table whose changes can alter someone's permissions. */
export const BUMP_ACCESS_EPOCH = `update "access_epoch" set "version" = "version" + 1 where "id" = 1; return null;`;

// `when` conditions are written the way PostgreSQL prints them back, so the drift check compares equal.
export function accessEpochTrigger(
  name: string,
  events: ('insert' | 'update' | 'delete')[],
  forEach: 'row' | 'statement',
  when?: string,
) {
  return { name, timing: 'after' as const, events, forEach, body: BUMP_ACCESS_EPOCH, ...(when ? { when } : {}) };
}
