import type { ToolDescriptor } from './toolset.ts';

/**
 * What an MCP server needs to know of a tool it serves: its name, what it does to the world, and
 * its REST route (remote mode calls it there). An operation is one; so is what a Mandate server
 * publishes of it (GET /api/mcp/tools), which is all a stdio server in remote mode loads.
 */
export interface ServedTool {
  readonly name: string;
  readonly route: { readonly method: string; readonly path: string };
}

/** The tools one MCP server serves, and what it tells the client about itself. */
export interface Catalog<T extends ServedTool = ServedTool> {
  name: string;
  title: string;
  instructions: string;
  /** What it serves, in the order listed (read-only ones only, on a read-only server). */
  tools: readonly T[];
  describe(tool: T): ToolDescriptor;
  /** Any tool Mandate has, served here or not: to tell a caller why one is not. */
  known(name: string): { tool: T; why: string } | undefined;
  /** The operations that list and call the installed servers' tools, when this server serves them. */
  gateway?: { list: T; call: T };
}

/** A catalog as GET /api/mcp/tools answers it. */
export interface CatalogJson {
  name: string;
  title: string;
  instructions: string;
  tools: { descriptor: ToolDescriptor; route: { method: string; path: string } }[];
  /** Mandate's tools this server does not serve, and why (the answer to a call of one). */
  not_served: Record<string, string>;
  gateway: { list: ServedTool; call: ServedTool } | null;
}

interface RemoteTool extends ServedTool {
  readonly descriptor?: ToolDescriptor;
}

/** The catalog a Mandate server published (remote mode); its tools are called on their routes. */
export function catalogFromJson(json: CatalogJson): Catalog<RemoteTool> {
  const tools: RemoteTool[] = json.tools.map((entry) => ({ name: entry.descriptor.name, route: entry.route, descriptor: entry.descriptor }));
  return {
    name: json.name,
    title: json.title,
    instructions: json.instructions,
    tools,
    describe: (tool) => tool.descriptor!,
    known(name) {
      // Refused here: the Mandate server never sees the call, so the tool needs no route.
      if (!Object.hasOwn(json.not_served, name)) return undefined;
      return { tool: { name, route: { method: 'POST', path: '' } }, why: json.not_served[name]! };
    },
    ...(json.gateway ? { gateway: json.gateway } : {}),
  };
}
