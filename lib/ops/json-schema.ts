import { z } from 'zod';
import type { AnyOperation } from './operation.ts';

export interface InputJsonSchema {
  type: 'object';
  properties?: Record<string, { type?: string | string[]; items?: unknown; [key: string]: unknown }>;
  required?: string[];
  [key: string]: unknown;
}

/**
 * `additionalProperties: {}` (zod's rendering of a record of unknown values) means the same as
 * `true`, but some clients reject or warn about the empty-schema form: publish the portable one.
 */
function portable(ctx: { jsonSchema: Record<string, unknown> }): void {
  const extra = ctx.jsonSchema.additionalProperties;
  if (extra && typeof extra === 'object' && Object.keys(extra).length === 0) ctx.jsonSchema.additionalProperties = true;
}

const inputs = new WeakMap<AnyOperation, InputJsonSchema>();
const outputs = new WeakMap<AnyOperation, InputJsonSchema>();

/**
 * A zod schema as JSON Schema, computed once per operation. Always `type: object`, which MCP
 * requires: an output that is a union of objects (an outcome and its shapes) is still one.
 */
function jsonSchemaOf(cache: WeakMap<AnyOperation, InputJsonSchema>, op: AnyOperation, schema: z.ZodType, io: 'input' | 'output'): InputJsonSchema {
  let json = cache.get(op);
  if (!json) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any', override: portable }) as Record<string, unknown>;
    json = { type: 'object', ...rest } as InputJsonSchema;
    cache.set(op, json);
  }
  return json;
}

/** The JSON Schema of what an operation accepts (its zod input, as a client sends it). */
export const inputJsonSchema = (op: AnyOperation): InputJsonSchema => jsonSchemaOf(inputs, op, op.input, 'input');

/** The JSON Schema of what a success returns (the tool's outputSchema). */
export const outputJsonSchema = (op: AnyOperation): InputJsonSchema => jsonSchemaOf(outputs, op, op.output, 'output');
