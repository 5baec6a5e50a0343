import { z } from 'zod';
import { auditOutput, cursorPage } from './outputs.ts';
import { AuditEvent, AUDIT_OUTCOMES } from '../db/entities/index.ts';
import { invalid } from '../errors.ts';
import { operation } from './operation.ts';
import { afterCursor, cursorField, decodeCursor, limitField, page } from './pagination.ts';
import { uuidField } from './schemas.ts';
import { auditView } from './views.ts';

const timeField = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time, e.g. 2026-12-31T18:00:00Z' });

export const queryAudit = operation({
  name: 'query_audit',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/admin/audit' },
  title: 'Query the audit log',
  description:
    'Search the audit log, newest first, a page at a time: filter by actor_id, operation (tool name), outcome (allowed, denied, invalid, failed), target (e.g. "user:<id>") and time range (since inclusive, until exclusive). ' +
    'Each event names the actor, the delegator it acted under, the operation, target, outcome and its redacted input. Returns {items, next_cursor}.',
  input: z.strictObject({
    actor_id: uuidField('the acting user').optional(),
    operation: z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters').optional(),
    outcome: z.enum(AUDIT_OUTCOMES).optional(),
    target: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters').optional(),
    since: timeField.optional(),
    until: timeField.optional(),
    limit: limitField,
    cursor: cursorField,
  }),
  output: cursorPage(auditOutput),
  permission: 'audit:read',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const since = input.since ? new Date(input.since) : undefined;
    const until = input.until ? new Date(input.until) : undefined;
    if (since && until && since >= until) throw invalid('until', 'must be later than since');
    await ctx.settleAudit();
    const where: Record<string, unknown>[] = [afterCursor(decodeCursor(input.cursor), 'at', 'desc')];
    if (input.actor_id) where.push({ actorId: input.actor_id });
    if (input.operation) where.push({ operation: input.operation });
    if (input.outcome) where.push({ outcome: input.outcome });
    if (input.target) where.push({ target: input.target });
    if (since) where.push({ at: { $gte: since } });
    if (until) where.push({ at: { $lt: until } });
    const rows = await ctx.em.find(AuditEvent, { $and: where }, { orderBy: { at: 'desc', id: 'desc' }, limit: input.limit + 1 });
    const { items, next_cursor } = page(rows, input.limit, (e) => e.at);
    return { items: items.map(auditView), next_cursor };
  },
});
