import { z } from 'zod';
import type { AnyOperation } from './operation.ts';

export interface InputJsonSchema {
  type: 'object';
  properties?: Record<string, { type?: string | string[]; items?: unknown; [key: string]: unknown }>;
  required?: string[];
  [key: string]: unknown;
}

const schemas = new WeakMap<AnyOperation, InputJsonSchema>();
const outputSchemas = new WeakMap<AnyOperation, InputJsonSchema>();

/** The JSON Schema of what an operation accepts (its zod input, as a client sends it), computed once. */
export function inputJsonSchema(op: AnyOperation): InputJsonSchema {
  let schema = schemas.get(op);
  if (!schema) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(op.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    schema = { ...rest, type: 'object' } as InputJsonSchema;
    schemas.set(op, schema);
  }
  return schema;
}

/** The JSON Schema of what a success returns (the tool's outputSchema), computed once. */
export function outputJsonSchema(op: AnyOperation): InputJsonSchema {
  let schema = outputSchemas.get(op);
  if (!schema) {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(op.output, { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>;
    // A union of objects (an outcome and its shapes) is still an object, which MCP requires.
    schema = { type: 'object', ...rest } as InputJsonSchema;
    outputSchemas.set(op, schema);
  }
  return schema;
}
