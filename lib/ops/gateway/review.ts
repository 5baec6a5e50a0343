import { z } from 'zod';
import { McpInstallation, McpToolPin, pinStatus, PIN_STATUSES, type McpCatalogEntry, type Project, type User } from '../../db/entities/index.ts';
import { conflict, OpError } from '../../errors.ts';
import { callerUserId } from '../../identity/caller.ts';
import { definitionDiff } from '../../gateway/definition.ts';
import { gatewayToolName, namespaceOf } from '../../gateway/names.ts';
import { operation, type OperationContext } from '../operation.ts';
import { requireManage, visibleInstallation } from '../installs.ts';
import { uuidField } from '../schemas.ts';
import { pinnable, reconcilePins } from './pins.ts';
import { upstreamTarget, type UsableInstallation } from './targets.ts';

// Reviewing what installed servers offer: their tools and pin status, a live test, per-tool
// enable/disable, and the installs:admin review of quarantined definitions.

const jsonValue = z.unknown();
const toolRef = z.string().min(1, 'must name an upstream tool').max(128, 'must be at most 128 characters');
const hashField = z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64-hex definition hash list_quarantined_mcp_tools shows (seen_hash)');

function namespaceFor(installation: McpInstallation): string {
  return namespaceOf({
    catalogName: (installation.catalog as McpCatalogEntry).name,
    scope: installation.scope,
    projectKey: (installation.project as Project | null)?.key ?? null,
  });
}

const pinOutput = z.strictObject({
  tool: z.string(),
  exposed_as: z.string().nullable().describe('the gateway name, or null when the upstream name cannot be one'),
  status: z.enum(PIN_STATUSES),
  enabled: z.boolean(),
  title: z.string().nullable(),
  description: z.string().nullable(),
  seen_hash: z.string(),
  approved_hash: z.string().nullable(),
  reviewed_by_id: z.string().nullable(),
  reviewed_at: z.string().nullable(),
  updated_at: z.string(),
});

function pinView(namespace: string, pin: McpToolPin) {
  return {
    tool: pin.name,
    exposed_as: gatewayToolName(namespace, pin.name),
    status: pinStatus(pin),
    enabled: pin.enabled,
    title: pin.seen.title,
    description: pin.seen.description,
    seen_hash: pin.seenHash,
    approved_hash: pin.approvedHash,
    reviewed_by_id: pin.reviewedById,
    reviewed_at: pin.reviewedAt?.toISOString() ?? null,
    updated_at: pin.updatedAt.toISOString(),
  };
}

async function loadInstallation(ctx: OperationContext, id: string): Promise<McpInstallation> {
  const installation = await visibleInstallation(ctx, id);
  await ctx.em.populate(installation, ['catalog', 'project', 'user']);
  return installation;
}

export const listMcpServerTools = operation({
  name: 'list_mcp_server_tools',
  servers: ['core', 'admin'],
  route: { method: 'GET', path: '/api/mcp_server/{id}/tools' },
  title: "List an installation's upstream tools",
  description:
    "The tools an installed MCP server offered when last listed, each with its pin status (pinned, quarantined, rejected), whether it is enabled, and the name it has in the gateway. Reads Mandate's records; test_mcp_server asks the server itself.",
  input: z.strictObject({ id: uuidField('the installation') }),
  output: z.strictObject({ installation_id: z.string(), namespace: z.string(), tools_pinned_at: z.string().nullable(), tools: z.array(pinOutput) }),
  permission: null,
  effect: 'read',
  annotations: {},
  target: (input) => `mcp_server:${input.id}`,
  async run(ctx, input) {
    const installation = await loadInstallation(ctx, input.id);
    const namespace = namespaceFor(installation);
    const pins = await ctx.em.find(McpToolPin, { installation }, { orderBy: { name: 'asc' } });
    return { installation_id: installation.id, namespace, tools_pinned_at: installation.toolsPinnedAt?.toISOString() ?? null, tools: pins.map((pin) => pinView(namespace, pin)) };
  },
});

export const testMcpServer = operation({
  name: 'test_mcp_server',
  servers: ['core', 'admin'],
  route: { method: 'POST', path: '/api/mcp_server/{id}/test' },
  title: 'Test an installed MCP server',
  description:
    'Start or connect to an installed MCP server in a session of its own (as you, with the installation\'s secrets), list its tools, and report: ok, the server\'s name and version, how many tools, which are quarantined, how long it took, or the error. ' +
    "The owner of a personal installation may; otherwise installs:admin. The listing is recorded like the gateway's (a first listing pins the tools).",
  input: z.strictObject({ id: uuidField('the installation') }),
  output: z.strictObject({
    ok: z.boolean(),
    installation_id: z.string(),
    transport: z.string(),
    server: z.strictObject({ name: z.string(), version: z.string() }).nullable(),
    tool_count: z.number().int(),
    tools: z.array(z.strictObject({ tool: z.string(), status: z.enum(PIN_STATUSES), enabled: z.boolean() })),
    ms: z.number().int(),
    error: z.strictObject({ code: z.string(), message: z.string() }).nullable(),
  }),
  permission: 'installs:write',
  effect: 'upstream-read',
  annotations: {},
  target: (input) => `mcp_server:${input.id}`,
  async run(ctx, input) {
    const installation = await loadInstallation(ctx, input.id);
    await requireManage(ctx, installation);
    const me = callerUserId(ctx.caller);
    if (!me) throw new OpError('forbidden', 'test_mcp_server runs the server as you: the operator has no installations');
    const entry = installation.catalog as McpCatalogEntry;
    const project = installation.project as Project | null;
    const usable: UsableInstallation = {
      id: installation.id, scope: installation.scope, projectId: project?.id ?? null, projectKey: project?.key ?? null, namespace: namespaceFor(installation),
      secrets: installation.secrets, toolsPinnedAt: installation.toolsPinnedAt ?? null, updatedAt: installation.updatedAt, entry,
    };
    const started = performance.now();
    const report = { installation_id: installation.id, transport: entry.transport };
    try {
      return await ctx.gateway.probe(upstreamTarget(ctx.vault, usable, me), async (tools, server) => {
        const pins = await reconcilePins(ctx.em, usable, pinnable(tools), ctx.now, ctx.log);
        const listed = tools.map((tool) => ({ tool: tool.name, status: pins.get(tool.name)?.status ?? 'quarantined', enabled: pins.get(tool.name)?.enabled ?? false }));
        return { ...report, ok: true, server, tool_count: tools.length, tools: listed, ms: Math.round(performance.now() - started), error: null };
      });
    } catch (error) {
      // What the server (or reaching it) did wrong is the report; anything else is this call's own error.
      if (!(error instanceof OpError) || !REPORTED.has(error.code)) throw error;
      return { ...report, ok: false, server: null, tool_count: 0, tools: [], ms: Math.round(performance.now() - started), error: { code: error.code, message: error.message } };
    }
  },
});

const REPORTED = new Set(['upstream_failed', 'upstream_timeout', 'forbidden', 'unavailable', 'rate_limited']);

async function findPin(ctx: OperationContext, installation: McpInstallation, tool: string): Promise<McpToolPin> {
  const pin = await ctx.em.findOne(McpToolPin, { installation, name: tool });
  if (!pin) throw new OpError('not_found', `the installation has no tool "${tool}" on record (list_mcp_server_tools shows them)`, { field: 'tool' });
  return pin;
}

export const setMcpServerToolEnabled = operation({
  name: 'set_mcp_server_tool_enabled',
  servers: ['core', 'admin'],
  route: { method: 'PATCH', path: '/api/mcp_server/{id}/tools/{tool}' },
  title: 'Enable or disable one tool of an installation',
  description:
    'Turn one upstream tool of an installation off (not listed, not callable through the gateway) or back on. The owner of a personal installation may; otherwise installs:admin. Returns the tool.',
  input: z.strictObject({ id: uuidField('the installation'), tool: toolRef, enabled: z.boolean() }),
  output: pinOutput,
  permission: 'installs:write',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: (input) => `mcp_server:${input.id} tool:${input.tool}`,
  async run(ctx, input) {
    const installation = await loadInstallation(ctx, input.id);
    await requireManage(ctx, installation);
    const pin = await findPin(ctx, installation, input.tool);
    pin.enabled = input.enabled;
    await ctx.em.flush();
    return pinView(namespaceFor(installation), pin);
  },
});

const quarantinedOutput = z.strictObject({
  installation_id: z.string(),
  catalog_name: z.string(),
  scope: z.string(),
  project_key: z.string().nullable(),
  user_id: z.string().nullable(),
  tool: z.string(),
  status: z.enum(PIN_STATUSES),
  seen_hash: z.string(),
  approved_hash: z.string().nullable(),
  diff: z.array(z.strictObject({ field: z.string(), before: jsonValue, after: jsonValue })),
  changed_at: z.string(),
});

/** installs:admin where the installation lives: its project, or globally. */
async function requireReviewer(ctx: OperationContext, installation: McpInstallation): Promise<void> {
  const project = installation.project as Project | null;
  await ctx.require('installs:admin', project?.id ?? null, project?.key);
}

export const listQuarantinedMcpTools = operation({
  name: 'list_quarantined_mcp_tools',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/mcp_quarantine' },
  title: 'List quarantined MCP server tools',
  description:
    'Tools of installed MCP servers held back from the gateway: new since the first listing, or changed since approved. Each with the diff (field, before, after) and seen_hash, which approve_mcp_tool and reject_mcp_tool take. ' +
    'installation_id narrows to one installation; include_rejected shows rejected ones too. Needs installs:admin (for a project\'s installation, in that project).',
  input: z.strictObject({ installation_id: uuidField('the installation').optional(), include_rejected: z.boolean().default(false) }),
  output: z.strictObject({ items: z.array(quarantinedOutput) }),
  permission: 'installs:admin',
  permissionScope: 'anywhere',
  effect: 'read',
  annotations: {},
  async run(ctx, input) {
    const pins = await ctx.em.find(
      McpToolPin,
      input.installation_id ? { installation: input.installation_id } : {},
      { populate: ['installation', 'installation.catalog', 'installation.project', 'installation.user'], orderBy: { updatedAt: 'asc', id: 'asc' } },
    );
    const items = [];
    for (const pin of pins) {
      const status = pinStatus(pin);
      if (status === 'pinned' || (status === 'rejected' && !input.include_rejected)) continue;
      const installation = pin.installation as McpInstallation;
      const project = installation.project as Project | null;
      if (!(await ctx.holds('installs:admin', project?.id ?? null))) continue;
      items.push({
        installation_id: installation.id,
        catalog_name: (installation.catalog as McpCatalogEntry).name,
        scope: installation.scope,
        project_key: project?.key ?? null,
        user_id: (installation.user as User | null)?.id ?? null,
        tool: pin.name,
        status,
        seen_hash: pin.seenHash,
        approved_hash: pin.approvedHash,
        diff: definitionDiff(pin.approved ?? null, pin.seen),
        changed_at: pin.updatedAt.toISOString(),
      });
    }
    return { items };
  },
});

const reviewInput = z.strictObject({ installation_id: uuidField('the installation'), tool: toolRef, seen_hash: hashField });

/** Applies a review to exactly the definition the reviewer saw: a server that changed it since gets a conflict, not an approval. */
async function review(ctx: OperationContext, input: z.output<typeof reviewInput>, decision: 'approve' | 'reject') {
  const installation = await ctx.em.findOne(McpInstallation, { id: input.installation_id }, { populate: ['catalog', 'project'] });
  if (!installation) throw new OpError('not_found', `MCP server installation ${input.installation_id} not found`, { field: 'installation_id' });
  await requireReviewer(ctx, installation);
  const pin = await findPin(ctx, installation, input.tool);
  if (pin.seenHash !== input.seen_hash) throw conflict(`the definition of "${input.tool}" changed since you looked (it is now ${pin.seenHash}); list_quarantined_mcp_tools shows the new diff`, 'seen_hash');
  const reviewed = { reviewedById: callerUserId(ctx.caller), reviewedAt: ctx.now };
  const changes = decision === 'approve' ? { approved: pin.seen, approvedHash: pin.seenHash, rejectedHash: null, ...reviewed } : { rejectedHash: pin.seenHash, ...reviewed };
  const updated = await ctx.em.nativeUpdate(McpToolPin, { id: pin.id, seenHash: input.seen_hash }, { ...changes, updatedAt: ctx.now });
  if (updated !== 1) throw conflict(`the definition of "${input.tool}" changed while you reviewed it; list_quarantined_mcp_tools shows the new diff`, 'seen_hash');
  ctx.auditDetail({ installation_id: installation.id, tool: input.tool, seen_hash: input.seen_hash, decision });
  await ctx.em.refresh(pin);
  return pinView(namespaceFor(installation), pin);
}

export const approveMcpTool = operation({
  name: 'approve_mcp_tool',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/mcp_quarantine/approve' },
  title: 'Approve a quarantined MCP server tool',
  description:
    'Approve the definition a quarantined tool has now (seen_hash, from list_quarantined_mcp_tools): it is pinned to that definition and usable through the gateway again. A later change quarantines it again. Needs installs:admin.',
  input: reviewInput,
  output: pinOutput,
  permission: 'installs:admin',
  permissionScope: 'anywhere',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: (input) => `mcp_server:${input.installation_id} tool:${input.tool}`,
  run: (ctx, input) => review(ctx, input, 'approve'),
});

export const rejectMcpTool = operation({
  name: 'reject_mcp_tool',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/mcp_quarantine/reject' },
  title: 'Reject a quarantined MCP server tool',
  description:
    'Reject the definition a quarantined tool has now (seen_hash): it stays unusable and leaves the quarantine list, until the server changes it again. Needs installs:admin.',
  input: reviewInput,
  output: pinOutput,
  permission: 'installs:admin',
  permissionScope: 'anywhere',
  effect: 'write',
  annotations: {},
  target: (input) => `mcp_server:${input.installation_id} tool:${input.tool}`,
  run: (ctx, input) => review(ctx, input, 'reject'),
});
