import { z } from 'zod';
import { OpError } from '../../errors.ts';
import { callerUserId } from '../../identity/caller.ts';
import { gatewayToolName, SEPARATOR } from '../../gateway/names.ts';
import { scrubText, scrubValue } from '../../redact.ts';
import { operation, type OperationContext } from '../operation.ts';
import { cachedPins, pinnable, reconcilePins, usablePin } from './pins.ts';
import { cachedUsableInstallations, upstreamTarget, type UsableInstallation } from './targets.ts';

// The gateway's two faces of one thing: the tools of the MCP servers installed for the caller, and
// calling one. The MCP servers list and call them through these (locally or over REST), so the
// guard, the audit and the errors are the runner's, as for every other tool.

const jsonObject = z.record(z.string(), z.unknown());

const gatewayToolOutput = z.strictObject({
  name: z.string().describe('the tool as the caller calls it: <namespace>__<tool>'),
  installation_id: z.string(),
  catalog_name: z.string(),
  namespace: z.string(),
  tool: z.string().describe("the upstream server's own name for it"),
  title: z.string().nullable(),
  description: z.string().nullable(),
  input_schema: jsonObject,
  output_schema: jsonObject.nullable(),
  annotations: jsonObject.nullable(),
});

/** The installation's own permission check: installs:use where it lives (its project, or globally). */
async function mayUse(ctx: OperationContext, installation: UsableInstallation): Promise<boolean> {
  return ctx.holds('installs:use', installation.projectId);
}

function requireUser(ctx: OperationContext): string {
  const me = callerUserId(ctx.caller);
  if (!me) throw new OpError('forbidden', 'the gateway serves users: installations are for people and agents, not the operator');
  return me;
}

export const listGatewayTools = operation({
  name: 'list_gateway_tools',
  servers: [],
  route: { method: 'GET', path: '/api/gateway/tools' },
  title: 'List the tools of your installed MCP servers',
  description:
    "The tools of every MCP server installed for you (personal, your projects', org-wide; usable now), namespaced <namespace>__<tool>, with their upstream definitions. " +
    'Only pinned, enabled tools are listed: a tool whose definition changed since it was approved, or that appeared later, is quarantined until an installs:admin review. ' +
    'Servers that cannot be reached are named in unavailable.',
  input: z.strictObject({}),
  output: z.strictObject({
    tools: z.array(gatewayToolOutput),
    unavailable: z.array(z.strictObject({ installation_id: z.string(), namespace: z.string(), message: z.string() })),
  }),
  permission: 'installs:use',
  permissionScope: 'anywhere',
  effect: 'upstream-read',
  annotations: {},
  async run(ctx) {
    const me = requireUser(ctx);
    const usable = [];
    const all = await cachedUsableInstallations(ctx, me);
    for (const candidate of all) if (await mayUse(ctx, candidate)) usable.push(candidate);
    const unavailable: { installation_id: string; namespace: string; message: string }[] = [];
    const listed = await Promise.all(
      usable.map(async (candidate) => {
        try {
          const offered = pinnable(await ctx.gateway.listTools(upstreamTarget(ctx.vault, candidate, me)));
          const pins = await reconcilePins(ctx.em, candidate, offered, ctx.now, ctx.log);
          return [...offered.values()].filter(({ hash, tool }) => usablePin(pins.get(tool.name), hash)).map(({ tool, definition }) => ({ candidate, tool, definition }));
        } catch (error) {
          const message = error instanceof OpError ? error.message : 'the server could not be listed';
          unavailable.push({ installation_id: candidate.id, namespace: candidate.namespace, message });
          return [];
        }
      }),
    );
    // A name more than one installation could claim is served by none of them (as calls resolve it).
    const byName = new Map<string, (typeof listed)[number][number]>();
    for (const entry of listed.flat()) {
      const name = gatewayToolName(entry.candidate.namespace, entry.tool.name);
      if (!name || claimants(all, name).length !== 1) continue;
      byName.set(name, entry);
    }
    const tools = [...byName.entries()].map(([name, { candidate, tool, definition }]) => {
      return {
        name,
        installation_id: candidate.id,
        catalog_name: candidate.entry.name,
        namespace: candidate.namespace,
        tool: tool.name,
        title: definition.title,
        description: definition.description,
        input_schema: definition.input_schema,
        output_schema: definition.output_schema,
        annotations: definition.annotations,
      };
    });
    return { tools, unavailable };
  },
});

/** The installations whose namespace prefixes a gateway name. */
function claimants(usable: readonly UsableInstallation[], name: string): UsableInstallation[] {
  return usable.filter((candidate) => name.startsWith(`${candidate.namespace}${SEPARATOR}`) && name.length > candidate.namespace.length + SEPARATOR.length);
}

/** The installation and upstream tool a gateway name stands for; refused when more than one installation could claim it. */
function resolveName(usable: readonly UsableInstallation[], name: string): { candidate: UsableInstallation; tool: string } | null {
  const found = claimants(usable, name);
  if (found.length > 1) {
    throw new OpError('conflict', `"${name}" could name a tool of ${found.map((c) => `"${c.namespace}"`).join(' or ')}; it is served by none of them`, { field: 'name' });
  }
  const [candidate] = found;
  return candidate ? { candidate, tool: name.slice(candidate.namespace.length + SEPARATOR.length) } : null;
}

const contentItem = z.record(z.string(), z.unknown());

export const callGatewayTool = operation({
  name: 'call_gateway_tool',
  servers: [],
  route: { method: 'POST', path: '/api/gateway/tools/call' },
  title: 'Call a tool of an installed MCP server',
  description:
    'Call a tool of an MCP server installed for you, by its gateway name (<namespace>__<tool>, as list_gateway_tools shows), with its arguments. ' +
    'The installation must be for you and usable now, the tool pinned and enabled. Returns the upstream result: content, structured_content, is_error.',
  input: z.strictObject({
    name: z.string().min(1, 'must name a tool (<namespace>__<tool>)').max(300, 'must be at most 300 characters'),
    arguments: z.record(z.string(), z.unknown()).default({}),
  }),
  output: z.strictObject({ content: z.array(contentItem), structured_content: jsonObject.nullable(), is_error: z.boolean() }),
  // Arguments go to another system and may carry anything: not kept in the audit log.
  secretInputs: ['arguments'],
  permission: 'installs:use',
  permissionScope: 'anywhere',
  effect: 'upstream-write',
  annotations: {},
  async run(ctx, input) {
    const me = requireUser(ctx);
    const found = resolveName(await cachedUsableInstallations(ctx, me), input.name);
    if (!found) throw new OpError('not_found', `no MCP server installed for you and usable now has a tool "${input.name}"; tools/list shows the tools you can call`, { field: 'name' });
    const { candidate, tool } = found;
    ctx.setTarget(`mcp_server:${candidate.id} tool:${tool}`);
    ctx.auditDetail({ installation_id: candidate.id, catalog_name: candidate.entry.name, tool });
    await ctx.require('installs:use', candidate.projectId, candidate.projectKey ?? undefined);
    const target = upstreamTarget(ctx.vault, candidate, me);
    // One lease from listing to answer: the session cannot be taken for another's room in between.
    const result = await ctx.gateway.withLease(target, async (lease) => {
      const offered = pinnable(await lease.currentTools());
      const hash = offered.get(tool)?.hash;
      if (!hash) throw new OpError('not_found', `"${candidate.entry.name}" has no tool "${tool}"`, { field: 'name' });
      // The pins as cached decide. A call records what the server offers only for a tool never seen, or
      // one that was pinned and now differs: a tool already held back is not rewritten by each session
      // that sees another definition (a server serving different sessions differently).
      let pinned = (await cachedPins(ctx, me, candidate.id)).get(tool);
      if (!pinned || (pinned.seenHash !== hash && pinned.status === 'pinned')) pinned = (await reconcilePins(ctx.em, candidate, offered, ctx.now, ctx.log)).get(tool);
      if (!pinned) throw new OpError('not_found', `"${candidate.entry.name}" has no tool "${tool}"`, { field: 'name' });
      if (pinned.status !== 'pinned') {
        throw new OpError(
          'forbidden',
          `${input.name} is quarantined: ${pinned.approvedHash ? 'its definition changed since it was approved' : 'it appeared after the server was first listed'}` +
            `${pinned.status === 'rejected' ? ', and the change was rejected' : ''}; someone with installs:admin must review it (list_quarantined_mcp_tools, approve_mcp_tool)`,
          { field: 'name' },
        );
      }
      if (!pinned.enabled) throw new OpError('forbidden', `${input.name} is disabled for this installation (set_mcp_server_tool_enabled turns it back on)`, { field: 'name' });
      if (!usablePin(pinned, hash)) throw new OpError('forbidden', `${input.name} is quarantined: the server offers it otherwise than approved`, { field: 'name' });
      const started = performance.now();
      let result;
      try {
        result = await lease.callTool(tool, input.arguments);
      } finally {
        ctx.auditDetail({ ms: Math.round(performance.now() - started) });
      }
      return result;
    });
    // What the server answers passes through the same scrub as Mandate's own messages: a server
    // that echoes its secret does not hand it to the caller.
    const answer = scrubValue({ content: (result.content ?? []) as Record<string, unknown>[], structured_content: (result.structuredContent ?? null) as Record<string, unknown> | null }, target.secrets);
    const json = JSON.stringify(answer);
    // A secret nested deeper than scrubValue walks is not passed on either.
    if (target.secrets.length && scrubText(json, target.secrets) !== json) throw new OpError('upstream_failed', `the result of ${input.name} holds a secret of its installation where it cannot be removed`);
    const size = Buffer.byteLength(json);
    if (size > ctx.gateway.limits.maxResultBytes) {
      throw new OpError('upstream_failed', `the result of ${input.name} is ${size} bytes, over this gateway's limit of ${ctx.gateway.limits.maxResultBytes}`);
    }
    ctx.auditDetail({ upstream_outcome: result.isError ? 'tool_error' : 'ok' });
    return { content: answer.content, structured_content: answer.structured_content, is_error: result.isError === true };
  },
});
