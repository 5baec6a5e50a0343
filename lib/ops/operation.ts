import type { z } from 'zod';
import type { Em } from '../db/orm.ts';
import type { Caller } from '../identity/caller.ts';
import type { Permission } from '../access/permissions.ts';
import type { EffectivePermissions, GrantSource, PermissionResolver } from '../access/resolver.ts';
import type { Tracker } from '../pm/provider.ts';
import type { Logger } from '../log.ts';
import type { Vault } from '../vault.ts';
import type { PmService } from '../pm/service.ts';
import type { GatewayPool } from '../gateway/pool.ts';

/** Hints for MCP clients. Never authorisation, never how a call runs: that is `effect`. */
export interface OperationAnnotations {
  destructiveHint?: boolean;
  idempotentHint?: boolean;
}

/**
 * What running the operation does, and so how the runner runs it (the MCP hints are derived from it):
 * - `read`: reads Mandate's own data; no transaction, its audit event batched;
 * - `write`: changes Mandate's data; runs in a transaction that commits its audit event with it;
 * - `upstream-read`: reads another system (a tracker); no transaction, audit batched;
 * - `upstream-write`: changes another system, which cannot be rolled back with ours: no
 *   transaction held open while it answers, and its audit event is written before the call returns.
 */
export type OperationEffect = 'read' | 'write' | 'upstream-read' | 'upstream-write';

export const isReadEffect = (effect: OperationEffect) => effect === 'read' || effect === 'upstream-read';

export interface OperationContext {
  /** Bound to the operation's transaction. */
  em: Em;
  caller: Caller;
  now: Date;
  log: Logger;
  resolver: PermissionResolver;
  /** Seals and opens stored secrets (AES-256-GCM). */
  vault: Vault;
  /** Trackers: settings, the upstream HTTP client. */
  pm: PmService;
  /** The sessions with installed MCP servers (the gateway). */
  gateway: GatewayPool;
  /** The grant the operation's own permission was used through (null: system caller or no permission). */
  via: GrantSource | null;
  /** The project the input names (`project`), looked up once by the runner; null when it names none. */
  project: { id: string; key: string } | null;
  /**
   * The caller's effective permissions in a project (null: globally); null for a system caller.
   * For the call's own project these are what the runner resolved against what this call sees (a
   * write: inside its transaction), so nothing is resolved twice; `fresh` asks again, for an
   * operation that did slow work since (so a grant revoked meanwhile is seen). `require` and `holds`
   * use the same.
   */
  permissionsIn(projectId: string | null, options?: { fresh?: boolean }): Promise<EffectivePermissions | null>;
  /** The caller's own tracker, opened by the tracker step of a PM tool (`steps`). */
  tracker?: Tracker;
  /** The tracker projects a search is confined to by the binding guard (undefined: not confined). */
  trackerProjects?: readonly string[] | undefined;
  /** Whether a confined caller may act on a tracker project with the tool's permission (undefined: not confined). */
  mayActOn?: ((trackerProject: string) => Promise<boolean>) | undefined;
  /**
   * P2: refuses unless the caller holds every permission `userId` holds, in every scope (for
   * operations whose target is known only once they run; the runner checks `actsOn` itself).
   */
  requireCovers(userId: string): Promise<void>;
  /** Checks a further permission the operation needs for this particular input (same guard, same errors). */
  require(permission: Permission, projectId?: string | null, projectKey?: string): Promise<void>;
  /** Whether the caller holds a permission (same resolution as `require`), for what to show rather than refuse. */
  holds(permission: Permission, projectId?: string | null): Promise<boolean>;
  /** Names what the call acted on, for the audit event (e.g. once a created row has its id). */
  setTarget(target: string): void;
  /** Adds facts to the audit event's detail (never a secret: they are stored as given). */
  auditDetail(detail: Record<string, unknown>): void;
  /**
   * Computes a value once and reuses it until an access change of `subject` (a user id: a change
   * to that user, its assignments, delegations, tokens or sessions, by any process) or of what
   * `dependsOn` names (e.g. the roles shown). Only for values derived from those, of that one user.
   */
  memo<T>(subject: string, key: string, compute: () => Promise<T>, dependsOn?: (value: T) => readonly string[]): Promise<T>;
  /** Writes this process's batched audit events, so a query of the audit log sees them. */
  settleAudit(): Promise<void>;
}

/** The MCP servers an operation can be a tool of (entrypoint.sh composes them by agent role). */
export const SERVER_NAMES = ['core', 'admin', 'pm'] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

/**
 * A step around an operation's run, in the spirit of tRPC's middleware: it may prepare the context
 * (open the caller's tracker), check, or map errors, then calls `next`. Declared by the operation.
 */
export type OperationStep = (ctx: OperationContext, input: unknown, next: (ctx: OperationContext) => Promise<unknown>) => Promise<unknown>;

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Route<Output> {
  method: HttpMethod;
  path: string;
  /** The HTTP status of a success (default 200). A method, so operations of any output share one type. */
  status?(output: Output): number;
  /** A browser flow's step: the success answers 302 to this location instead of JSON. */
  redirect?(output: Output): string;
  /**
   * The route also takes the seed's camelCase names for the input's fields (catalogId for
   * catalog_id), and answers in camelCase when a request used them. For the one route
   * infrastructure-as-code tools already call in that shape; nothing else has aliases.
   */
  camelCaseAliases?: boolean;
}

export interface Operation<Schema extends z.ZodType = z.ZodType, Output = unknown> {
  /** The MCP tool name; REST routes and audit events use it too. */
  name: string;
  /**
   * The MCP servers that serve it as a tool: `core` (the caller's own things), `admin` (other users
   * and the platform), `pm` (trackers). None: a REST route only (a browser flow's step).
   */
  servers: readonly ServerName[];
  /**
   * The REST face: `{name}` segments of the path fill the input fields of that name; GET and DELETE
   * take the rest from the query string, POST and PATCH from the JSON body.
   */
  route: Route<NoInfer<Output>>;
  title: string;
  /** Written for a model: what it does, when to use it, what it returns. */
  description: string;
  input: Schema;
  /**
   * What a success returns (a strict zod object): the tool's `outputSchema`, the REST response in
   * the OpenAPI document; the test suite checks every result against it (MANDATE_VERIFY_OPERATIONS).
   */
  output: z.ZodType;
  /** The PM toolset the operation belongs to (deployments and requests choose toolsets). */
  toolset?: string;
  /**
   * Input fields that are secrets for this operation although their names do not say so (an OAuth
   * callback's `code` and `state`): redacted in the audit event, scrubbed from messages.
   */
  secretInputs?: readonly string[];
  /** What the caller must hold; null for operations on the caller's own things. */
  permission: Permission | null;
  /**
   * Where `permission` is checked before the operation runs: in its `project` (default, globally
   * when it names none), or `anywhere`: held globally or in some project, the operation's steps
   * then requiring it for each tracker project the call touches (the PM tools' binding guard).
   */
  permissionScope?: 'anywhere';
  effect: OperationEffect;
  annotations: OperationAnnotations;
  /**
   * The user whose credentials or standing the call changes (their tokens, password, email,
   * sessions, status). The runner then requires the caller to hold every permission that user
   * holds, in every scope (P2 in DESIGN.md), before the operation runs.
   */
  actsOn?: (input: z.output<Schema>) => string | undefined;
  /** Steps run around `run`, outermost first (a PM tool's: open the caller's tracker). */
  steps?: readonly OperationStep[];
  /** The project the permission is checked for, when the input names one. */
  project?: (input: z.output<Schema>) => string | undefined;
  /** What the call acts on, known from the input, e.g. `user:<id>`. */
  target?: (input: z.output<Schema>) => string | undefined;
  run(ctx: OperationContext, input: z.output<Schema>): Promise<Output>;
}

const defined = new Set<object>();

/**
 * Defines an operation once; the runner, MCP, REST and remote faces all take it from here. An
 * operation a module of lib/ops/index.ts exports is registered: nothing else lists it.
 */
export function operation<Schema extends z.ZodType, Output>(definition: Operation<Schema, Output>): Operation<Schema, Output> {
  defined.add(definition);
  return definition;
}

/** Every operation defined so far, in definition order (the registry checks it missed none). */
export const definedOperations = (): AnyOperation[] => [...defined] as AnyOperation[];

/** Whether a module's export is an operation (rather than a schema or a helper). */
export const isOperation = (value: unknown): value is AnyOperation => typeof value === 'object' && value !== null && defined.has(value);

export type AnyOperation = Operation<z.ZodType, unknown>;
