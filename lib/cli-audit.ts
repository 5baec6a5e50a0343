import { maintainAuditPartitions } from './audit/partitions.ts';
import { auditEvents } from './ops/audit-export.ts';
import { help, str, SYSTEM, UsageError, withRuntime, type Command } from './cli-support.ts';

/** An ISO 8601 date or date-time (2026-01-31, 2026-01-31T12:00:00Z); a date alone is UTC midnight. */
function instant(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`${flag} must be an ISO 8601 date or date-time with a zone, e.g. 2026-01-31 or 2026-01-31T12:00:00Z`);
  return date;
}

// The audit log's upkeep and a way out of it: an export that streams, and the partition upkeep
// `mandate serve` runs by itself (for deployments that run only stdio servers, or want it now).
export const auditCommands: Record<string, Command> = {
  'audit export': {
    usage: 'mandate audit export --since DATE [--until DATE] [--format jsonl]',
    summary:
      'Write the audit events from --since (inclusive) to --until (exclusive, default: now), oldest first, one JSON object per line, as query_audit shows them. ' +
      'Streams: any size, constant memory. The export itself is audited.',
    options: { ...help, since: { type: 'string' }, until: { type: 'string' }, format: { type: 'string' } },
    async run(args, io) {
      const since = instant(str(args, 'since'), '--since');
      if (!since) throw new UsageError('--since is required (an ISO 8601 date or date-time)');
      const until = instant(str(args, 'until'), '--until') ?? new Date();
      if (until <= since) throw new UsageError('--until must be after --since');
      const format = str(args, 'format') ?? 'jsonl';
      if (format !== 'jsonl') throw new UsageError(`--format must be jsonl (JSON Lines), not "${format}"`);
      return withRuntime(io, 'audit export', async (runtime) => {
        let events = 0;
        for await (const event of auditEvents(runtime.db.orm, since, until)) {
          await io.write(`${JSON.stringify(event)}\n`);
          events++;
        }
        runtime.runner.audit.enqueue({ caller: SYSTEM, operation: 'audit_export', outcome: 'allowed', detail: { since: since.toISOString(), until: until.toISOString(), format, events } });
        await runtime.runner.audit.flush();
        io.err(`exported ${events} audit event(s)`);
        return 0;
      });
    },
  },
  'audit maintain': {
    usage: 'mandate audit maintain',
    summary: "Make the audit log's monthly partitions ahead and apply MANDATE_AUDIT_RETENTION_DAYS now (mandate serve does both every six hours); prints what it did as JSON.",
    options: { ...help },
    async run(_args, io) {
      return withRuntime(io, 'audit maintain', async (runtime) => {
        const done = await maintainAuditPartitions(runtime.db.orm.em.fork(), new Date(), io.config.auditRetentionDays);
        io.out(JSON.stringify({ created: done.created, dropped: done.dropped, deleted: done.deleted, retention_days: io.config.auditRetentionDays }));
        return 0;
      });
    },
  },
};
