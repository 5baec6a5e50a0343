import { randomUUID } from 'node:crypto';
import { defineEntity, p } from '@mikro-orm/core';
import { McpInstallation } from './mcp-installation.ts';
import { gatewayChangeTrigger } from './gateway-change.ts';

/** A tool's definition as pinned: what a model reads and what the gateway hashes. */
export interface ToolDefinition {
  name: string;
  title: string | null;
  description: string | null;
  input_schema: Record<string, unknown>;
  output_schema: Record<string, unknown> | null;
  annotations: Record<string, unknown> | null;
}

// One upstream tool of an installation, pinned by the hash of its definition. `seen` is what the
// server offered last; `approved` what was trusted (on the first listing, or by an installs:admin
// review). The tool is usable only while both hashes are equal and it is enabled, so a server that
// changes a description to slip instructions to a model loses that tool until someone looks.
const McpToolPinSchema = defineEntity({
  name: 'McpToolPin',
  tableName: 'mcp_tool_pin',
  properties: {
    id: p.uuid().primary().onCreate(() => randomUUID()),
    installation: () => p.manyToOne(McpInstallation).deleteRule('cascade'),
    name: p.string().length(128),
    seenHash: p.string().length(64),
    seen: p.json<ToolDefinition>(),
    approvedHash: p.string().length(64).nullable(),
    approved: p.json<ToolDefinition>().nullable(),
    // A definition an admin refused: no longer asked about until the server changes it again.
    rejectedHash: p.string().length(64).nullable(),
    enabled: p.boolean().default(true),
    reviewedById: p.uuid().nullable(),
    reviewedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p.datetime().onCreate(() => new Date()).onUpdate(() => new Date()),
  },
  uniques: [{ name: 'mcp_tool_pin_unique', properties: ['installation', 'name'] }],
  triggers: [gatewayChangeTrigger('mcp_tool_pin')],
});

export class McpToolPin extends McpToolPinSchema.class {}
McpToolPinSchema.setClass(McpToolPin);
export { McpToolPinSchema };

export const PIN_STATUSES = ['pinned', 'quarantined', 'rejected'] as const;
export type PinStatus = (typeof PIN_STATUSES)[number];

/** pinned: the server offers what was approved; rejected: what it offers was refused; else quarantined. */
export function pinStatus(pin: Pick<McpToolPin, 'seenHash' | 'approvedHash' | 'rejectedHash'>): PinStatus {
  if (pin.approvedHash === pin.seenHash) return 'pinned';
  return pin.rejectedHash === pin.seenHash ? 'rejected' : 'quarantined';
}
