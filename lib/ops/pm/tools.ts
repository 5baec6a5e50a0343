import { z } from 'zod';
import { operation, type OperationContext, type OperationStep, type Route } from '../operation.ts';
import { withTracker } from './connection-use.ts';
import { guardTrackerScope, requireAnsweredWithin, type GuardOptions, type TrackerScope } from './bindings.ts';
import type { Page, Tracker } from '../../pm/provider.ts';
import type { PmToolset } from '../../pm/settings.ts';
import { OpError } from '../../errors.ts';
import type { Permission } from '../../access/permissions.ts';

// Every tracker tool is defined here once: its toolset, route, input and what it asks the
// caller's tracker. Read-only tools need pm:read, the rest pm:write; all reach another system.

export const connectionField = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .optional()
  .describe('which of your connections to use (id or name); default: your default connection');

export const issueKey = z
  .string()
  .trim()
  .min(1, 'must not be empty')
  .max(100, 'must be at most 100 characters')
  .regex(/^(#\d+|[A-Za-z0-9][A-Za-z0-9_-]*)$/, 'must be an issue key such as PROJ-123 (Redmine, OpenProject: 123 or #123): letters, digits, "-" and "_"')
  .describe('the issue key, e.g. PROJ-123 (Redmine: 123)');
export const projectRef = z.string().trim().min(1, 'must not be empty').max(255, 'must be at most 255 characters');
export const markdownText = (what: string) => z.string().min(1, 'must not be empty').max(32_000, 'must be at most 32000 characters').describe(`${what} (Markdown)`);
export const fieldList = z.array(z.string().trim().min(1).max(100)).max(50, 'at most 50 fields').optional()
  .describe('extra fields to return by id (e.g. customfield_10010; Jira: or by name, e.g. "Story Points", returned under the name given); summary, status, type, priority, assignee, reporter, project, parent, labels, created and updated always come');
export const pmLimit = z.number().int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').default(25);
export const pmCursor = z.string().max(2000, 'must be at most 2000 characters').optional().describe('next_cursor from the previous page');

interface PmToolDefinition<Shape extends z.ZodRawShape, Output> {
  name: string;
  toolset: PmToolset;
  route: Route<NoInfer<Output>>;
  title: string;
  description: string;
  input: Shape;
  output: z.ZodType;
  write?: boolean;
  destructive?: boolean;
  idempotent?: boolean;
  /** The tracker projects the call touches, for the binding guard (default: `global`, a global grant only). */
  scope?: (input: z.output<z.ZodObject<Shape>>) => TrackerScope;
  /** The answer names the issue's project, checked after the call (get_issue): no lookup before it. */
  checksAnswer?: boolean;
  /** Inputs kept out of the audit event and scrubbed from messages. */
  secretInputs?: string[];
  /** Names what the call acts on for the audit event, e.g. the issue key. */
  target?: (input: z.output<z.ZodObject<Shape>>) => string | undefined;
  run(tracker: Tracker, input: z.output<z.ZodObject<Shape>>, ctx: OperationContext): Promise<Output>;
}

/** A tracker tool: takes `connection`, runs with the caller's own tracker, maps tracker failures. */
export function pmTool<Shape extends z.ZodRawShape, Output>(definition: PmToolDefinition<Shape, Output>) {
  const write = definition.write ?? false;
  return operation({
    name: definition.name,
    servers: ['pm'],
    toolset: definition.toolset,
    route: definition.route,
    title: definition.title,
    description: definition.description,
    input: z.strictObject({ connection: connectionField, ...definition.input }),
    output: definition.output,
    permission: write ? 'pm:write' : 'pm:read',
    // Admitted on a grant held anywhere; the binding guard requires it where the call acts.
    permissionScope: 'anywhere',
    effect: write ? 'upstream-write' : 'upstream-read',
    annotations: {
      ...(definition.destructive ? { destructiveHint: true } : {}),
      ...(definition.idempotent ? { idempotentHint: true } : {}),
    },
    ...(definition.target ? { target: definition.target as (input: unknown) => string | undefined } : {}),
    ...(definition.secretInputs ? { secretInputs: definition.secretInputs } : {}),
    steps: [callerTracker(definition.name, write ? 'pm:write' : 'pm:read', (definition.scope ?? (() => 'global')) as (input: unknown) => TrackerScope, definition.target as ((input: unknown) => string | undefined) | undefined, { confirmIssueProjects: !definition.checksAnswer })],
    run: (ctx, input) => definition.run(ctx.tracker!, input as never, ctx),
  });
}

/**
 * The tracker step: opens the caller's own connection (the one named, or the default), names it
 * in the audit target, and maps the tracker's failures to clear errors (withTracker).
 */
function callerTracker(operation: string, permission: Permission, scope: (input: unknown) => TrackerScope, target: ((input: unknown) => string | undefined) | undefined, options: GuardOptions): OperationStep {
  return (ctx, input, next) =>
    withTracker(ctx, (input as { connection?: string }).connection, permission, async (tracker, connection) => {
      const acted = target?.(input);
      ctx.setTarget(`pm_connection:${connection.id}${acted ? ` ${acted}` : ''}`);
      // Before any request: a call on a tracker project the caller may not act on never leaves.
      const guarded = await guardTrackerScope(ctx, operation, permission, scope(input), connection, tracker, options);
      const result = await next(Object.create(ctx, { tracker: { value: tracker }, trackerProjects: { value: guarded.confinedTo }, mayActOn: { value: guarded.mayActOn } }) as OperationContext);
      requireAnsweredWithin(result, guarded, operation);
      return result;
    });
}

/** A tracker page as every list tool returns it. */
export function pageOutput<T>(page: Page<T>) {
  return { items: page.items, next_cursor: page.nextCursor, ...(page.total !== undefined ? { total: page.total } : {}) };
}

export function requireOneOf(input: Record<string, unknown>, fields: string[]): void {
  if (fields.every((f) => input[f] === undefined)) {
    throw new OpError('invalid_input', `${fields.join(' or ')}: give one of them`, { field: fields[0]! });
  }
}
