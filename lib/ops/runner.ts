import { randomUUID } from 'node:crypto';
import { emOf, lazyFork, type EmSource, type Orm } from '../db/orm.ts';
import type { AuditOutcome } from '../db/entities/index.ts';
import type { Caller, UserCaller } from '../identity/caller.ts';
import type { Permission } from '../access/permissions.ts';
import { requireLive, requirePermission } from '../access/guard.ts';
import type { EffectivePermissions, PermissionResolver } from '../access/resolver.ts';
import { databaseUnavailable, OpError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { isReadEffect, type AnyOperation, type Operation, type OperationContext } from './operation.ts';
import { requireCoverage } from '../access/coverage.ts';
import { addAuditEvent, AuditWriter, type AuditRecord } from '../audit/writer.ts';
import { AccessCache, type ValueUse } from '../access/changes.ts';
import type { Speculation } from '../access/speculation.ts';
import { parseInput, toOpError } from './error-mapping.ts';
import { findProject } from './lookups.ts';
import { REDACTED, redact, scrubText, secretValues } from '../redact.ts';
import type { z } from 'zod';
import type { Vault } from '../vault.ts';
import type { PmService } from '../pm/service.ts';
import type { GatewayPool } from '../gateway/pool.ts';
import { scrubbedReport, SILENT_REPORT, withClientReport, type ClientReport } from '../report.ts';

export interface RunMeta {
  /** performance.now() when the request arrived: every change committed before it is seen. */
  startedAt?: number;
  requestId?: string;
  sessionId?: string;
  clientAddress?: string;
  /** Served from the access caches while the access-change read is out (see Speculation); reads only. */
  speculation?: Speculation;
  /** Where the call's log messages and progress go (an MCP client that asked for them); nowhere by default. */
  report?: ClientReport;
}

export type RunResult<Output> = { ok: true; value: Output } | { ok: false; error: OpError };

/**
 * The test suite sets MANDATE_VERIFY_OPERATIONS=1, and then every call checks what its operation
 * declares: the result against its output schema (a field the schema does not name fails the test
 * that saw it), and a read of Mandate's data runs in a READ ONLY transaction (a read that writes fails).
 */
const verifying = () => process.env.MANDATE_VERIFY_OPERATIONS === '1';

function verifyOutput(op: AnyOperation, value: unknown): void {
  const checked = op.output.safeParse(value);
  if (checked.success) return;
  const where = checked.error.issues.slice(0, 5).map((issue) => `${issue.path.join('.') || '(result)'}: ${issue.message}`).join('; ');
  throw new OpError('internal', `the result of ${op.name} does not match its output schema: ${where}`);
}

const OUTCOME_OF: Record<string, AuditOutcome> = {
  invalid_input: 'invalid',
  forbidden: 'denied',
  unauthenticated: 'denied',
};

export interface RunnerDeps {
  orm: Orm;
  resolver: PermissionResolver;
  vault: Vault;
  pm: PmService;
  gateway: GatewayPool;
  log: Logger;
  now?: () => Date;
  /** How long an audit insert may take before the database counts as away (see AuditWriter). */
  auditDeadlineMs?: number;
}

/**
 * The one function that runs an operation, whatever face called it: validate, check the
 * permission, run in a transaction, map errors, and write exactly one audit event per call.
 */
export class OperationRunner {
  private readonly deps: RunnerDeps;
  private readonly now: () => Date;
  private readonly memos: AccessCache<unknown>;
  /** The test suite's checks (MANDATE_VERIFY_OPERATIONS); off in production. */
  verify = verifying();
  /** Group-commits the audit events of calls that changed nothing; see AuditWriter. */
  readonly audit: AuditWriter;

  constructor(deps: RunnerDeps) {
    this.deps = deps;
    this.now = deps.now ?? (() => new Date());
    this.memos = new AccessCache(deps.resolver.changes);
    this.audit = new AuditWriter(deps.orm, deps.log, deps.auditDeadlineMs ? { deadlineMs: deps.auditDeadlineMs } : {});
  }

  async run<Schema extends z.ZodType, Output>(
    op: Operation<Schema, Output>,
    caller: Caller,
    rawInput: unknown,
    meta: RunMeta = {},
  ): Promise<RunResult<Output>> {
    let speculation = meta.speculation;
    // Only a local read may run on unconfirmed caches: anything else could leave a trace (a write,
    // an upstream call) for a caller the access-change read is about to refuse.
    if (speculation && op.effect !== 'read') {
      await speculation.settle();
      speculation = undefined;
    }
    const { result, trace } = await this.attempt(op, caller, rawInput, meta, speculation);
    // A speculative call leaves its audit event and log line only once its caches are vouched for;
    // and no call answers before its event is stored.
    await speculation?.settle();
    await trace();
    return result;
  }

  /** Runs the call; its group-committed audit event and log lines are left to `trace`. */
  private async attempt<Schema extends z.ZodType, Output>(
    op: Operation<Schema, Output>,
    caller: Caller,
    rawInput: unknown,
    meta: RunMeta,
    speculation: Speculation | undefined,
  ): Promise<{ result: RunResult<Output>; trace: () => Promise<void> }> {
    const started = meta.startedAt ?? performance.now();
    const notBefore = speculation?.notBefore ?? started;
    const requestId = meta.requestId ?? randomUUID();
    // Forked only if the call needs the database: a cached read (whoami) does not.
    const em = lazyFork(this.deps.orm);
    const audit = pendingAudit(op, caller, rawInput, { ...meta, requestId });
    const secrets = [...secretValues(rawInput), ...declaredSecrets(op, rawInput)];
    const actor = caller.kind === 'user' ? caller.userId : `system:${caller.name}`;
    // What the call reports while it runs is scrubbed like its errors: a message may quote the input.
    const report = scrubbedReport(meta.report ?? SILENT_REPORT, secrets);
    const finish = (outcome: AuditOutcome, error?: OpError) => {
      const ms = Math.round(performance.now() - started);
      this.deps.log.info({ op: op.name, outcome, actor, requestId, ms, ...(error ? { code: error.code } : {}) }, 'operation');
    };
    const failed = (outcome: AuditOutcome, error: OpError, logFirst: () => void = () => undefined, databaseAway = false) => ({
      // What the caller sees is scrubbed too: a message may quote a secret of the input, encoded.
      result: { ok: false as const, error: scrubbedError(error, secrets) },
      trace: () => {
        logFirst();
        finish(outcome, error);
        const stored = this.auditFailure(audit, outcome, error, secrets);
        // A call that failed because the database is away does not wait out a second deadline for
        // its event (queued, written when the database is back): the caller saw it fail.
        return databaseAway ? Promise.resolve() : stored;
      },
    });

    // The pipeline, in order: audit writable, parse, scope (project and the caller's permissions,
    // resolved once), authorize, cover (P2), then run by effect, through the operation's steps.
    // Fail closed: a call whose audit event could not be written does not run at all.
    if (!this.audit.writable) return failed('failed', auditUnavailable());
    const parsed = parseInput(op.input, rawInput ?? {});
    if (!parsed.success) return failed('invalid', parsed.error);
    const input = parsed.data as z.output<Schema>;
    audit.projectKey = op.project?.(input);
    audit.target = op.target?.(input);

    try {
      const now = this.now();
      // P2: the user the call acts on, whose standing the caller must cover (see DESIGN.md, Access).
      const principal = caller.kind === 'user' ? op.actsOn?.(input) : undefined;
      // Scope, authorize and cover, against what `source` sees: a write's inside its transaction
      // (so a grant revoked while the call waited is seen, and nothing is resolved twice).
      const admit = async (source: EmSource): Promise<CallScope> => {
        const scope = await this.scope(op, input, source, caller, notBefore, speculation);
        audit.projectKey = scope.projectKey ?? undefined;
        this.authorize(op, caller, scope, audit);
        if (principal) await requireCoverage(this.deps.resolver, source, caller as UserCaller, principal, op.name);
        return scope;
      };
      const call = async (source: EmSource, scope: CallScope, settles = true) => {
        const ctx = this.context(source, op.name, caller, now, audit, scope, settles, speculation, notBefore);
        // No context entered for a call nobody listens to (most calls; it would cost every one).
        const result = await (report === SILENT_REPORT ? this.invoke(op, ctx, input) : withClientReport(report, () => this.invoke(op, ctx, input)));
        if (this.verify) verifyOutput(op, result);
        return result;
      };
      let value: Output;
      if (isReadEffect(op.effect)) {
        // Reads need no transaction (the suite runs local ones READ ONLY to prove they write
        // nothing); their audit event is group-committed. A tracker read may record its connection's
        // health (connected, invalid, expired) in its own unit of work: that is not under test here.
        const scope = await admit(em);
        if (this.verify && op.effect === 'read') {
          // Queued events are written first, and settleAudit inside does nothing: it writes through
          // another connection, which the embedded database's one connection would wait on forever.
          await this.audit.flush();
          value = await em().transactional(async (tx) => {
            await tx.execute('set transaction read only');
            return call(tx, scope, false);
          });
        } else {
          value = await call(em, scope);
        }
        return {
          result: { ok: true, value },
          trace: () => {
            finish('allowed');
            return this.audit.enqueue({ ...audit, outcome: 'allowed' });
          },
        };
      }
      if (op.effect === 'upstream-write') {
        // A change made in another system cannot be rolled back with ours: no transaction is held
        // open while the tracker (or installed server) answers, and the audit event is written
        // before the call returns (a failure to write it is the caller's to see).
        value = await call(em, await admit(em));
        addAuditEvent(em(), { ...audit, outcome: 'allowed' });
        await em().flush();
      } else {
        value = await em().transactional(async (tx) => {
          const result = await call(tx, await admit(tx));
          addAuditEvent(tx, { ...audit, outcome: 'allowed' });
          return result;
        });
      }
      return {
        result: { ok: true, value },
        trace: async () => finish('allowed'),
      };
    } catch (thrown) {
      const { error, unexpected } = toOpError(thrown);
      const logUnexpected = () => {
        if (unexpected) this.deps.log.error({ op: op.name, requestId, err: scrubErr(thrown, secrets) }, 'operation failed unexpectedly');
      };
      return failed(OUTCOME_OF[error.code] ?? 'failed', error, logUnexpected, databaseUnavailable(thrown) !== null);
    }
  }

  /** The project the input names (by key or id), and the caller's permissions there: once per call. */
  private async scope(op: AnyOperation, input: unknown, source: EmSource, caller: Caller, notBefore: number, use: ValueUse | undefined): Promise<CallScope> {
    const ref = op.project?.(input);
    const project = ref ? await findProject(emOf(source), ref) : null;
    const projectId = project?.id ?? null;
    // An operation that checks its permission per tracker project itself is admitted on a grant held
    // anywhere; those permissions are for admission only, never the call's global scope.
    const anywhere = op.permissionScope === 'anywhere' && !project;
    const permissions = caller.kind !== 'user' ? null
      : anywhere ? await this.deps.resolver.resolveAnywhere(source, caller, notBefore, use)
      : await this.deps.resolver.resolve(source, caller, projectId, notBefore, use);
    return { projectId, projectKey: project?.key ?? null, permissions, anywhere };
  }

  /** The operation's own permission, in its project; or, for one on the caller's own things, a live caller. */
  private authorize(op: AnyOperation, caller: Caller, scope: CallScope, audit: PendingAudit): void {
    if (caller.kind !== 'user' || !scope.permissions) return;
    if (op.permission) audit.via = requirePermission(scope.permissions, op.permission, { operation: op.name, projectKey: audit.projectKey });
    else requireLive(scope.permissions);
  }

  /** Runs the operation through its steps (outermost first), then its own run. */
  private invoke<Output>(op: Operation<z.ZodType, Output>, ctx: OperationContext, input: unknown): Promise<Output> {
    const steps = op.steps ?? [];
    const at = (index: number, current: OperationContext): Promise<unknown> =>
      index < steps.length ? steps[index]!(current, input, (next) => at(index + 1, next)) : op.run(current, input as never);
    return at(0, ctx) as Promise<Output>;
  }

  /** Audits a call refused before it could run (e.g. a tool this server does not serve). */
  async refuse(op: AnyOperation, caller: Caller, rawInput: unknown, error: OpError, meta: RunMeta = {}): Promise<void> {
    await meta.speculation?.settle();
    await this.auditFailure(pendingAudit(op, caller, rawInput, meta), OUTCOME_OF[error.code] ?? 'failed', error, [...secretValues(rawInput), ...declaredSecrets(op, rawInput)]);
  }

  // use: the speculation the call runs under, told of the cached values it reads (its memos).
  // notBefore: when the call began; its further checks share the access-change read its admission made.
  private context(tx: EmSource, operation: string, caller: Caller, now: Date, audit: PendingAudit, scope: CallScope, settles: boolean, use: ValueUse | undefined, notBefore: number): OperationContext {
    // The call's own scope is resolved already (against what tx sees); another project is resolved now,
    // as of the call's start (fresh: as of now, for an operation that did slow work since).
    const permissionsIn = async (projectId: string | null, options: { fresh?: boolean } = {}) => {
      if (caller.kind !== 'user') return null;
      if (scope.permissions && !scope.anywhere && projectId === scope.projectId && !options.fresh) return scope.permissions;
      return options.fresh ? this.deps.resolver.resolve(tx, caller, projectId) : this.deps.resolver.resolve(tx, caller, projectId, notBefore, use);
    };
    return {
      get em() {
        return emOf(tx);
      },
      caller,
      now,
      log: this.deps.log,
      resolver: this.deps.resolver,
      vault: this.deps.vault,
      pm: this.deps.pm,
      gateway: this.deps.gateway,
      via: audit.via ?? null,
      project: scope.projectId ? { id: scope.projectId, key: scope.projectKey! } : null,
      permissionsIn,
      requireCovers: async (userId: string) => {
        if (caller.kind === 'user') await requireCoverage(this.deps.resolver, tx, caller, userId, operation);
      },
      require: async (permission: Permission, projectId: string | null = null, projectKey?: string) => {
        const effective = await permissionsIn(projectId);
        if (effective) requirePermission(effective, permission, { operation, projectKey });
      },
      holds: async (permission: Permission, projectId: string | null = null) => {
        const effective = await permissionsIn(projectId);
        return !effective || (effective.live && effective.grants.has(permission));
      },
      setTarget: (target: string) => {
        audit.target = target;
      },
      auditDetail: (detail: Record<string, unknown>) => {
        audit.detail = { ...audit.detail, ...detail };
      },
      settleAudit: () => (settles ? this.audit.flush() : Promise.resolve()),
      memo: async <T>(subject: string, key: string, compute: () => Promise<T>, dependsOn?: (value: T) => readonly string[]): Promise<T> => {
        const memoKey = `${operation}|${subject}|${key}`;
        const cached = this.memos.get(memoKey, now, use) as T | undefined;
        if (cached !== undefined) return cached;
        // The feed was read at the start of this call (its permission check); a value computed now belongs to that read.
        const stamp = this.deps.resolver.changes.stamp;
        const value = await compute();
        this.memos.set(memoKey, { value, subject, dependsOn: dependsOn?.(value) ?? [], validUntil: null }, stamp);
        return value;
      },
    };
  }

  // A failed call changed nothing (its transaction, if any, rolled back): its event is group-committed.
  private auditFailure(audit: PendingAudit, outcome: AuditOutcome, error: OpError, secrets: string[] = []): Promise<void> {
    return this.audit.enqueue({ ...audit, outcome, errorCode: error.code, message: scrubText(error.message, secrets) });
  }
}

function scrubbedError(error: OpError, secrets: string[]): OpError {
  const message = scrubText(error.message, secrets);
  const issues = error.issues?.map((issue) => ({ field: issue.field, message: scrubText(issue.message, secrets) }));
  if (message === error.message && !issues?.some((issue, i) => issue.message !== error.issues![i]!.message)) return error;
  return new OpError(error.code, message, {
    ...(error.field !== undefined ? { field: error.field } : {}),
    ...(issues ? { issues } : {}),
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
  });
}

function scrubErr(error: unknown, secrets: string[] = []) {
  if (!(error instanceof Error)) return { message: scrubText(String(error), secrets) };
  return { type: error.name, message: scrubText(error.message, secrets), stack: error.stack ? scrubText(error.stack, secrets) : undefined };
}

type PendingAudit = Omit<AuditRecord, 'outcome'>;

/** What the runner resolved for a call before running it, handed to the operation in its context. */
interface CallScope {
  projectId: string | null;
  projectKey: string | null;
  permissions: EffectivePermissions | null;
  /** `permissions` are what the caller holds in any project (admission of a `permissionScope: 'anywhere'` operation). */
  anywhere: boolean;
}

const auditUnavailable = () => new OpError('unavailable', 'the audit log cannot be written right now, so nothing is run; try again shortly');

function pendingAudit(op: AnyOperation, caller: Caller, rawInput: unknown, meta: RunMeta): PendingAudit {
  return {
    caller,
    operation: op.name,
    permission: op.permission,
    requestId: meta.requestId ?? randomUUID(),
    sessionId: meta.sessionId ?? (caller.kind === 'user' ? caller.sessionId : undefined),
    clientAddress: meta.clientAddress,
    detail: { input: redactDeclared(op, redact(rawInput ?? {})) },
    via: null,
  };
}

/** The values of the fields an operation declares secret (`secretInputs`). */
function declaredSecrets(op: AnyOperation, rawInput: unknown): string[] {
  if (!op.secretInputs || !rawInput || typeof rawInput !== 'object') return [];
  const input = rawInput as Record<string, unknown>;
  return op.secretInputs.map((field) => input[field]).filter((value): value is string => typeof value === 'string');
}

function redactDeclared(op: AnyOperation, input: unknown): unknown {
  if (!op.secretInputs || !input || typeof input !== 'object' || Array.isArray(input)) return input;
  const out = { ...(input as Record<string, unknown>) };
  for (const field of op.secretInputs) if (field in out) out[field] = REDACTED;
  return out;
}

export type { AnyOperation };
