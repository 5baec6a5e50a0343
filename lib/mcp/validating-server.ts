import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { getLiteralValue, getObjectShape, safeParse, type AnyObjectSchema } from '@modelcontextprotocol/sdk/server/zod-compat.js';
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/**
 * A JSON-RPC error for the SDK to answer with: its code, message and data as given (the SDK's own
 * McpError prefixes "MCP error <code>:" to the message a client shows its user).
 */
export class ProtocolError extends Error {
  readonly code: number;
  readonly data: { code: string; field?: string } | undefined;
  constructor(code: number, message: string, data?: { code: string; field?: string }) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

/**
 * The SDK's Server, except that a request whose params do not fit the method's schema is answered
 * with -32602 Invalid params naming each field and why, as the specification asks. The SDK itself
 * lets the schema's parse error escape as -32603 Internal error carrying the whole zod issue dump.
 *
 * Every handler goes through this override, the ones the SDK's constructor registers too (initialize,
 * ping, logging/setLevel): the check runs while the SDK parses, before its own wrappers see the request.
 */
export class ValidatingServer extends Server {
  override setRequestHandler(...[schema, handler]: Parameters<Server['setRequestHandler']>): void {
    super.setRequestHandler(checkedSchema(schema) as unknown as typeof schema, handler);
  }
}

// Servers are made per request on HTTP: the wrapping schema is built once per method's schema, not
// per server (building one, and zod compiling it at its first parse, would cost every request).
const checkedSchemas = new WeakMap<AnyObjectSchema, z.ZodType>();

function checkedSchema(schema: AnyObjectSchema): z.ZodType {
  let checked = checkedSchemas.get(schema);
  if (!checked) {
    const method = methodOf(schema);
    checked = z
      .object({ method: z.literal(method) })
      .loose()
      .superRefine((request) => {
        const result = safeParse(schema, request);
        if (!result.success) throw invalidParams(method, result.error);
      });
    checkedSchemas.set(schema, checked);
  }
  return checked;
}

function methodOf(schema: AnyObjectSchema): string {
  const method = getObjectShape(schema)?.method;
  const value = method ? getLiteralValue(method) : undefined;
  if (typeof value !== 'string') throw new Error('a request schema needs a method literal');
  return value;
}

interface Issue {
  path: PropertyKey[];
  message: string;
}

/** `params.name: expected string` for each issue; the first field also as `data.field` for programs. */
export function invalidParams(method: string, error: unknown): ProtocolError {
  const issues = ((error as { issues?: Issue[] }).issues ?? []).slice(0, 10);
  const described = issues.map((issue) => `${fieldOf(issue.path) || '(request)'}: ${issue.message}`);
  const field = issues[0] ? fieldOf(issues[0].path) : '';
  return new ProtocolError(ErrorCode.InvalidParams, `invalid ${method} request: ${described.join('; ') || 'malformed'}`, {
    code: 'invalid_input',
    ...(field ? { field } : {}),
  });
}

function fieldOf(path: PropertyKey[]): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index ? '.' : ''}${String(part)}`)).join('');
}
