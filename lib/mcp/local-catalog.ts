import { callGatewayTool, listGatewayTools, OPERATIONS } from '../ops/index.ts';
import { isReadEffect, type AnyOperation } from '../ops/operation.ts';
import type { Catalog, CatalogJson } from './catalog.ts';
import { composeOperations, toolDescriptor, type Toolset } from './toolset.ts';

/**
 * The catalog of the MCP server made of `toolsets`, from the registry: read-only tools only if
 * asked, and only those `serves` accepts (the deployment's and the request's choice of PM toolsets).
 */
export function localCatalog(toolsets: readonly Toolset[], readOnly = false, serves?: (op: AnyOperation) => boolean): Catalog<AnyOperation> {
  const tools = composeOperations(toolsets, readOnly, serves);
  const served = new Set(tools.map((op) => op.name));
  const name = `mandate-${toolsets.map((t) => t.name).join('-')}`;
  // Installed servers' tools are their servers' word, whatever their hints say: not on read-only servers.
  const gateway = !readOnly && toolsets.some((t) => t.gateway);
  return {
    name,
    title: `Mandate (${toolsets.map((t) => t.name).join(' + ')})`,
    instructions: toolsets.map((t) => t.instructions).join('\n'),
    tools,
    describe: toolDescriptor,
    known(toolName) {
      const op = Object.hasOwn(OPERATIONS, toolName) ? OPERATIONS[toolName] : undefined;
      if (!op || served.has(toolName)) return undefined;
      const why = readOnly && !isReadEffect(op.effect)
        ? 'this server serves read-only tools only'
        : op.toolset
          ? `${name} does not serve it here: its toolset "${op.toolset}" is not enabled for this deployment or request`
          : `${name} does not serve it`;
      return { tool: op, why };
    },
    ...(gateway ? { gateway: { list: listGatewayTools, call: callGatewayTool } } : {}),
  };
}

/** What GET /api/mcp/tools answers: everything a stdio server in remote mode needs to serve it. */
export function catalogJson(catalog: Catalog<AnyOperation>): CatalogJson {
  const notServed: Record<string, string> = {};
  for (const name of Object.keys(OPERATIONS)) {
    const known = catalog.known(name);
    if (known) notServed[name] = known.why;
  }
  const route = (op: AnyOperation) => ({ method: op.route.method, path: op.route.path });
  return {
    name: catalog.name,
    title: catalog.title,
    instructions: catalog.instructions,
    tools: catalog.tools.map((op) => ({ descriptor: catalog.describe(op), route: route(op) })),
    not_served: notServed,
    gateway: catalog.gateway ? { list: { name: catalog.gateway.list.name, route: route(catalog.gateway.list) }, call: { name: catalog.gateway.call.name, route: route(catalog.gateway.call) } } : null,
  };
}
