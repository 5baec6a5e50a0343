import { randomUUID } from 'node:crypto';
import { McpInstallation, McpToolPin, pinStatus, type PinStatus } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import type { Logger } from '../../log.ts';
import { canonicalJson, definitionHash, definitionOf, MAX_DEFINITION_BYTES, type UpstreamTool } from '../../gateway/definition.ts';

/** The most tools of one installation the gateway pins and offers. */
const MAX_TOOLS = 500;
/** Names the gateway can offer at all (the MCP alphabet; the pin's column); others are not pinned. */
const PINNABLE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export interface PinnedTool {
  pin: McpToolPin;
  status: PinStatus;
  /** Pinned, enabled, and offered by the server now. */
  usable: boolean;
}

/**
 * Records what the server offers now against the pins: the first listing of an installation pins
 * every tool (trust on first use); after it, a new tool or a changed definition is quarantined
 * until an installs:admin review. The first listing is claimed by one conditional update, so two
 * processes listing at once cannot both trust what they saw.
 */
export async function reconcilePins(em: Em, installation: McpInstallation, tools: readonly UpstreamTool[], now: Date, log: Logger): Promise<Map<string, PinnedTool>> {
  const db = em.fork();
  const offered = new Map<string, { definition: ReturnType<typeof definitionOf>; hash: string }>();
  for (const tool of tools.slice(0, MAX_TOOLS)) {
    if (typeof tool.name !== 'string' || !PINNABLE_NAME.test(tool.name)) continue;
    const definition = definitionOf(tool);
    const json = canonicalJson(definition);
    // Too big to review, or holding what the database cannot store (NUL): not offered.
    if (json.length > MAX_DEFINITION_BYTES || json.includes('\\u0000')) continue;
    offered.set(tool.name, { definition, hash: definitionHash(definition) });
  }
  // Claimed in the database only: the loaded row is left as it is, so no flush of the caller's unit
  // of work rewrites it (its updated_at is the version gateway sessions are checked against).
  const first = installation.toolsPinnedAt === null && (await db.nativeUpdate(McpInstallation, { id: installation.id, toolsPinnedAt: null }, { toolsPinnedAt: now })) === 1;
  const pins = new Map((await db.find(McpToolPin, { installation: installation.id })).map((pin) => [pin.name, pin]));
  let changed = false;
  for (const [name, { definition, hash }] of offered) {
    const pin = pins.get(name);
    if (!pin) {
      const approved = first ? JSON.stringify(definition) : null;
      await db.execute(
        `insert into mcp_tool_pin (id, installation_id, name, seen_hash, seen, approved_hash, approved, enabled, created_at, updated_at)
         values (?, ?, ?, ?, ?::jsonb, ?, ?::jsonb, true, ?, ?) on conflict (installation_id, name) do nothing`,
        [randomUUID(), installation.id, name, hash, JSON.stringify(definition), first ? hash : null, approved, now, now],
        'run',
      );
      if (!first) log.warn({ installation: installation.id, tool: name }, 'mcp server offers a new tool: quarantined until reviewed');
      changed = true;
    } else if (pin.seenHash !== hash) {
      await db.nativeUpdate(McpToolPin, { id: pin.id, seenHash: pin.seenHash }, { seen: definition, seenHash: hash, updatedAt: now });
      if (pin.approvedHash !== hash) log.warn({ installation: installation.id, tool: name }, 'mcp server changed a tool definition: quarantined until reviewed');
      changed = true;
    }
  }
  const current = changed ? await em.fork().find(McpToolPin, { installation: installation.id }) : [...pins.values()];
  return new Map(
    current.map((pin) => {
      const status = pinStatus(pin);
      const now = offered.get(pin.name);
      return [pin.name, { pin, status, usable: status === 'pinned' && pin.enabled && now?.hash === pin.approvedHash }];
    }),
  );
}
