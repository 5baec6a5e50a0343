import { lazyFork } from '../db/orm.ts';
import type { Caller } from '../identity/caller.ts';
import type { AnyOperation } from '../ops/operation.ts';
import type { RunMeta, RunResult } from '../ops/runner.ts';
import type { OpError } from '../errors.ts';
import type { Runtime } from '../runtime.ts';
import type { ClientReport } from '../report.ts';
import type { ServedTool } from './catalog.ts';

/**
 * What an MCP server needs to serve one caller: which tools it may see, and a way to run one.
 * Locally that is the operation runner; in remote mode (MANDATE_URL) it is the REST API.
 */
export interface ToolBackend<T extends ServedTool = AnyOperation> {
  /** The subset of `tools` the caller holds the permission of (listing is a convenience, not authorisation). */
  visible(tools: readonly T[]): Promise<T[]>;
  /** `report`: where the call's log messages and progress go (not every backend sends them on). */
  call(tool: T, args: unknown, report?: ClientReport): Promise<RunResult<unknown>>;
  /** Records a refused call of a tool this server does not serve to the caller. */
  refuse(tool: T, args: unknown, error: OpError): void | Promise<void>;
}

/** Runs tools in this process as `caller` (bound to its session, when it has one). */
export function localBackend(runtime: Runtime, caller: Caller, request: Pick<RunMeta, 'startedAt' | 'clientAddress' | 'speculation'> = {}): ToolBackend {
  return {
    async visible(operations) {
      if (caller.kind !== 'user') return [...operations];
      const notBefore = request.speculation?.notBefore ?? request.startedAt;
      const held = await runtime.resolver.resolveAnywhere(lazyFork(runtime.db.orm), caller, notBefore);
      if (!held.live) return [];
      return operations.filter((op) => op.permission === null || held.grants.has(op.permission));
    },
    call(op, args, report) {
      return runtime.runner.run(op, caller, args, report ? { ...request, report } : request);
    },
    refuse(op, args, error) {
      return runtime.runner.refuse(op, caller, args, error, request);
    },
  };
}
