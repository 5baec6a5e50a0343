import { createHash } from 'node:crypto';
import type { ToolDefinition } from '../db/entities/index.ts';

// What of an upstream tool is pinned: everything a model reads or a client acts on.

/** A tool as an MCP server lists it (the fields the gateway reads). */
export interface UpstreamTool {
  name: string;
  title?: string | undefined;
  description?: string | undefined;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown> | undefined;
  annotations?: Record<string, unknown> | undefined;
}

/** The largest definition the gateway pins (a bigger one is not offered: it is an attack, or a mistake). */
export const MAX_DEFINITION_BYTES = 64 * 1024;

export function definitionOf(tool: UpstreamTool): ToolDefinition {
  return {
    name: tool.name,
    title: tool.title ?? null,
    description: tool.description ?? null,
    input_schema: tool.inputSchema,
    output_schema: tool.outputSchema ?? null,
    annotations: tool.annotations ?? null,
  };
}

/** JSON with object keys sorted at every depth: equal definitions hash equal however they were written. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function definitionHash(definition: ToolDefinition): string {
  return createHash('sha256').update(canonicalJson(definition)).digest('hex');
}

const DEFINITION_FIELDS = ['title', 'description', 'input_schema', 'output_schema', 'annotations'] as const;

/** What changed between an approved definition and the one now offered, field by field. */
export function definitionDiff(before: ToolDefinition | null, after: ToolDefinition) {
  return DEFINITION_FIELDS.filter((field) => canonicalJson(before?.[field] ?? null) !== canonicalJson(after[field])).map((field) => ({
    field,
    before: before ? (before[field] ?? null) : null,
    after: after[field] ?? null,
  }));
}
