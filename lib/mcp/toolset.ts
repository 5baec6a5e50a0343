import { isReadEffect, type AnyOperation } from '../ops/operation.ts';
import { inputJsonSchema, outputJsonSchema } from '../ops/json-schema.ts';

/** A named list of operations served together as one MCP server (`core`, `admin`, `pm`). */
export interface Toolset {
  name: string;
  title: string;
  /** Told to the model at initialize: what this server is for. */
  instructions: string;
  operations: AnyOperation[];
  /** Also serves the tools of the caller's installed MCP servers (the gateway). */
  gateway?: boolean;
}

export interface ToolDescriptor {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: 'object'; [key: string]: unknown };
  outputSchema: { type: 'object'; [key: string]: unknown };
  annotations: {
    title: string;
    readOnlyHint: boolean;
    destructiveHint: boolean;
    idempotentHint: boolean;
    openWorldHint: boolean;
  };
}

const descriptors = new WeakMap<AnyOperation, ToolDescriptor>();

/** The MCP tool an operation is, computed once per operation (JSON Schema from its zod input). */
export function toolDescriptor(op: AnyOperation): ToolDescriptor {
  let descriptor = descriptors.get(op);
  if (!descriptor) {
    const readOnly = isReadEffect(op.effect);
    descriptor = {
      name: op.name,
      title: op.title,
      description: op.description,
      inputSchema: inputJsonSchema(op),
      outputSchema: outputJsonSchema(op) as ToolDescriptor['outputSchema'],
      annotations: {
        title: op.title,
        readOnlyHint: readOnly,
        destructiveHint: !readOnly && (op.annotations.destructiveHint ?? false),
        idempotentHint: readOnly || (op.annotations.idempotentHint ?? false),
        openWorldHint: op.effect.startsWith('upstream'),
      },
    };
    descriptors.set(op, descriptor);
  }
  return descriptor;
}

/**
 * The operations of several toolsets, each once, in order; read-only ones only if asked, and only
 * those `serves` accepts (the deployment's and the request's choice of PM toolsets).
 */
export function composeOperations(toolsets: readonly Toolset[], readOnly: boolean, serves: (op: AnyOperation) => boolean = () => true): AnyOperation[] {
  const seen = new Map<string, AnyOperation>();
  for (const toolset of toolsets) {
    for (const op of toolset.operations) {
      if (readOnly && !isReadEffect(op.effect)) continue;
      if (!serves(op)) continue;
      if (!seen.has(op.name)) seen.set(op.name, op);
    }
  }
  return [...seen.values()];
}
