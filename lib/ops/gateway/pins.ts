import { randomUUID } from 'node:crypto';
import { GATEWAY_CHANGE_SUBJECT, McpInstallation, McpToolPin, pinStatus, type PinStatus } from '../../db/entities/index.ts';
import type { Em } from '../../db/orm.ts';
import type { Logger } from '../../log.ts';
import { canonicalJson, definitionHash, definitionOf, MAX_DEFINITION_BYTES, type UpstreamTool } from '../../gateway/definition.ts';
import type { OperationContext } from '../operation.ts';

/** The most tools of one installation the gateway pins and offers. */
const MAX_TOOLS = 500;
/** Names the gateway can offer at all (the MCP alphabet; the pin's column); others are not pinned. */
const PINNABLE_NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** A pin as the gateway decides with it (plain data: cached across calls). */
export interface PinState {
  status: PinStatus;
  enabled: boolean;
  seenHash: string;
  approvedHash: string | null;
}

const stateOf = (pin: McpToolPin): PinState => ({ status: pinStatus(pin), enabled: pin.enabled, seenHash: pin.seenHash, approvedHash: pin.approvedHash ?? null });

/** Whether a tool may be offered and called: pinned to what the server offers now, and enabled. */
export const usablePin = (pin: PinState | undefined, offeredHash: string | undefined): boolean =>
  pin !== undefined && pin.status === 'pinned' && pin.enabled && offeredHash === pin.approvedHash;

export type Offered = Map<string, { tool: UpstreamTool; definition: ReturnType<typeof definitionOf>; hash: string }>;
// A session's listing stays the same array until the server's tools change: hashed once.
const hashedListings = new WeakMap<readonly UpstreamTool[], Offered>();

/** The tools the gateway pins of a listing, with their hashes: names it can offer, definitions it can store and review. */
export function pinnable(tools: readonly UpstreamTool[]): Offered {
  const known = hashedListings.get(tools);
  if (known) return known;
  const offered: Offered = new Map();
  for (const tool of tools.slice(0, MAX_TOOLS)) {
    if (typeof tool.name !== 'string' || !PINNABLE_NAME.test(tool.name)) continue;
    const definition = definitionOf(tool);
    const json = canonicalJson(definition);
    // Too big to review, or holding what the database cannot store (NUL): not offered.
    if (json.length > MAX_DEFINITION_BYTES || json.includes('\\u0000')) continue;
    offered.set(tool.name, { tool, definition, hash: definitionHash(definition) });
  }
  hashedListings.set(tools, offered);
  return offered;
}

/** An installation's pins, kept until anything the gateway serves changes (GATEWAY_CHANGE_SUBJECT). */
export function cachedPins(ctx: OperationContext, userId: string, installationId: string): Promise<Map<string, PinState>> {
  return ctx.memo(
    userId,
    `gateway-pins:${installationId}`,
    async () => new Map((await ctx.em.find(McpToolPin, { installation: installationId })).map((pin) => [pin.name, stateOf(pin)])),
    () => [GATEWAY_CHANGE_SUBJECT],
  );
}

/**
 * Records what the server offers now against the pins: the first listing of an installation pins
 * every tool (trust on first use); after it, a new tool or a changed definition is quarantined
 * until an installs:admin review. The first listing is claimed by one conditional update, so two
 * processes listing at once cannot both trust what they saw. Writes only what changed.
 */
export async function reconcilePins(
  em: Em,
  installation: Pick<McpInstallation, 'id' | 'toolsPinnedAt'>,
  offered: Offered,
  now: Date,
  log: Logger,
): Promise<Map<string, PinState>> {
  // One transaction: the claim of the first listing holds its row until the trusted pins are in, so
  // a concurrent reconcile (another call, another process) waits, then finds them instead of
  // inserting the same tools as quarantined. The loaded row is left as it is, so no flush of a
  // caller's unit of work rewrites it (its updated_at is the version sessions are checked against).
  const changed = await em.fork().transactional(async (db) => {
    const first = installation.toolsPinnedAt === null && (await db.nativeUpdate(McpInstallation, { id: installation.id, toolsPinnedAt: null }, { toolsPinnedAt: now })) === 1;
    const pins = new Map((await db.find(McpToolPin, { installation: installation.id })).map((pin) => [pin.name, pin]));
    let wrote = false;
    for (const [name, { definition, hash }] of offered) {
      const pin = pins.get(name);
      if (!pin) {
        await db.execute(
          `insert into mcp_tool_pin (id, installation_id, name, seen_hash, seen, approved_hash, approved, enabled, created_at, updated_at)
           values (?, ?, ?, ?, ?::jsonb, ?, ?::jsonb, true, ?, ?) on conflict (installation_id, name) do nothing`,
          [randomUUID(), installation.id, name, hash, JSON.stringify(definition), first ? hash : null, first ? JSON.stringify(definition) : null, now, now],
          'run',
        );
        if (!first) log.warn({ installation: installation.id, tool: name }, 'mcp server offers a new tool: quarantined until reviewed');
        wrote = true;
      } else if (pin.seenHash !== hash) {
        await db.nativeUpdate(McpToolPin, { id: pin.id, seenHash: pin.seenHash }, { seen: definition, seenHash: hash, updatedAt: now });
        if (pin.approvedHash !== hash) log.warn({ installation: installation.id, tool: name }, 'mcp server changed a tool definition: quarantined until reviewed');
        wrote = true;
      }
    }
    return wrote;
  });
  const current = await em.fork().find(McpToolPin, { installation: installation.id });
  if (changed) log.debug({ installation: installation.id }, 'mcp server tool pins recorded');
  return new Map(current.map((pin) => [pin.name, stateOf(pin)]));
}
