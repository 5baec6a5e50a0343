import { z } from 'zod';
import { catalogOutput, itemsOf } from './outputs.ts';
import { MCP_TRANSPORTS, McpCatalogEntry, McpInstallation, type CredentialField } from '../db/entities/index.ts';
import { conflict, invalid, OpError } from '../errors.ts';
import { ALL_PERMISSIONS } from '../access/permissions.ts';
import { operation, type OperationContext } from './operation.ts';
import { findCatalogEntry } from './lookups.ts';

// The catalog: MCP servers an admin offers for installation.

export const catalogRef = z.string().trim().min(1, 'must name a catalog entry (its name or id)').max(64, 'must be at most 64 characters');
const catalogName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z][a-z0-9_-]{1,63}$/, 'must be 2-64 characters: letters, digits, "_" or "-", starting with a letter')
  // "__" separates a gateway tool's namespace from the upstream tool's name.
  .refine((name) => !name.includes('__'), 'must not contain "__" (it separates the server from the tool in gateway tool names)');
const description = z.string().trim().max(2000, 'must be at most 2000 characters');
const serverUrl = z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).max(2000, 'must be at most 2000 characters');
const command = z.string().trim().min(1, 'must not be empty').max(500, 'must be at most 500 characters');
const args = z.array(z.string().max(1000, 'must be at most 1000 characters')).max(50, 'must have at most 50 arguments');
const credentialField = z.strictObject({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, 'must be 1-64 letters, digits or "_", starting with a letter (e.g. API_KEY)'),
  description: z.string().trim().max(500, 'must be at most 500 characters').default(''),
  required: z.boolean().default(true),
});
const credentialFields = z
  .array(credentialField)
  .max(20, 'must have at most 20 fields')
  .refine((fields) => new Set(fields.map((f) => f.name)).size === fields.length, 'field names must be unique');

// Header and query templates: how a remote server gets an installation's secrets ({FIELD} fills in).
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'accept', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']);
const template = z.string().max(1000, 'must be at most 1000 characters').regex(/^[^\r\n\0]*$/, 'must be one line (no CR, LF or NUL)');
const headerTemplates = z
  .record(z.string().regex(HEADER_NAME, 'must be an HTTP header name').refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), 'is set by the MCP transport itself'), template)
  .refine((map) => Object.keys(map).length <= 20, 'must have at most 20 entries');
const queryTemplates = z
  .record(z.string().min(1, 'must not be empty').max(64, 'must be at most 64 characters'), template)
  .refine((map) => Object.keys(map).length <= 20, 'must have at most 20 entries');
const PLACEHOLDER = /\{([^{}]*)\}/g;

/** Every {FIELD} of a header or query template names a credential field of the entry. */
function checkTemplates(entry: { transport: string; headers: Record<string, string>; query: Record<string, string>; credentialFields: { name: string }[] }) {
  const known = new Set(entry.credentialFields.map((f) => f.name));
  for (const [kind, map] of [['headers', entry.headers], ['query', entry.query]] as const) {
    const names = Object.keys(map);
    if (names.length && entry.transport !== 'remote') throw invalid(kind, 'only a remote server takes header or query templates (a stdio server gets its secrets as environment variables)');
    for (const name of names) {
      for (const [, field] of map[name]!.matchAll(PLACEHOLDER)) {
        if (!known.has(field!)) throw invalid(`${kind}.${name}`, `{${field}} names no credential field of this entry (its fields: ${[...known].join(', ') || 'none'})`);
      }
    }
  }
}

// Variables that change how a program starts (its loader, its runtime's options, its search path):
// a stdio server's credential fields become environment variables with values users supply, so
// none may be one of these.
const LAUNCH_VARIABLES = /^(LD_|DYLD_|NODE_|NPM_CONFIG_|PYTHON|PERL|RUBY|BASH_|GCONV_|MALLOC_|JAVA_|_JAVA_|GIT_|DOCKER_|UV_|GLIBC_)|^(PATH|ENV|IFS|SHELLOPTS|HOME|TMPDIR|LANG|LC_ALL|PS4|PROMPT_COMMAND)$/i;

/** Whether a credential field name would change how a stdio server's command starts. */
export const isLaunchVariable = (name: string) => LAUNCH_VARIABLES.test(name);

function checkStdioFields(entry: { transport: string; credentialFields: { name: string }[] }) {
  if (entry.transport !== 'stdio') return;
  entry.credentialFields.forEach((field, i) => {
    if (LAUNCH_VARIABLES.test(field.name)) {
      throw invalid(`credential_fields.${i}.name`, `"${field.name}" would set a variable that changes how the server's command starts; a stdio server's secrets are its environment, so name it otherwise (e.g. API_KEY)`);
    }
  });
}

/**
 * A stdio entry is a command Mandate runs as its own OS user, which can read what that user can
 * (Mandate's files, its process's environment): defining one is as strong as every permission, so
 * only a caller holding all of them may create one or change its command.
 */
async function missingPermissions(ctx: OperationContext): Promise<string[]> {
  const held = await ctx.permissionsIn(null);
  return held ? ALL_PERMISSIONS.filter((permission) => !held.grants.has(permission)) : [];
}

async function requireAllForCommands(ctx: OperationContext, field: string) {
  const missing = await missingPermissions(ctx);
  if (missing.length) {
    throw new OpError('forbidden', `permission denied: a stdio server runs its command as Mandate's own OS user, so defining one needs every permission; you do not hold ${missing.join(', ')}`, { field });
  }
}

/** A remote server needs a URL and no command; a stdio server a command and no URL. */
function checkTransport(entry: { transport: string; url: string | null; command: string | null; args: string[] }) {
  if (entry.transport === 'remote') {
    if (!entry.url) throw invalid('url', 'is required for a remote server');
    if (entry.command) throw invalid('command', 'a remote server has a url, not a command');
    if (entry.args.length) throw invalid('args', 'a remote server takes no command arguments');
  } else {
    if (!entry.command) throw invalid('command', 'is required for a stdio server');
    if (entry.url) throw invalid('url', 'a stdio server has a command, not a url');
  }
}

export function catalogView(entry: McpCatalogEntry, installations?: number) {
  return {
    id: entry.id,
    name: entry.name,
    description: entry.description,
    transport: entry.transport,
    url: entry.url,
    command: entry.command,
    args: entry.args,
    credential_fields: entry.credentialFields,
    headers: entry.headers,
    query: entry.query,
    ...(installations !== undefined ? { installations } : {}),
    created_at: entry.createdAt.toISOString(),
    updated_at: entry.updatedAt.toISOString(),
  };
}

const catalogTarget = (input: { id?: string; name?: string }) => `mcp_catalog:${input.id ?? input.name}`;

export const listMcpCatalog = operation({
  name: 'list_mcp_catalog',
  servers: ['core', 'admin'],
  route: { method: 'GET', path: '/api/mcp_catalog' },
  title: 'List the MCP server catalog',
  description:
    'List the MCP servers that can be installed: name, description, transport (remote URL or stdio command), and the credential fields an installation needs. Returns {items}.',
  input: z.strictObject({}),
  output: itemsOf(catalogOutput),
  permission: null,
  effect: 'read',
  annotations: {},
  async run(ctx) {
    const entries = await ctx.em.find(McpCatalogEntry, {}, { orderBy: { name: 'asc' } });
    return { items: entries.map((entry) => catalogView(entry)) };
  },
});

export const getMcpCatalogEntry = operation({
  name: 'get_mcp_catalog_entry',
  servers: ['admin'],
  route: { method: 'GET', path: '/api/mcp_catalog/{id}' },
  title: 'Get an MCP catalog entry',
  description: 'Get one MCP catalog entry by name or id, with how many installations it has.',
  input: z.strictObject({ id: catalogRef }),
  output: catalogOutput,
  permission: null,
  effect: 'read',
  annotations: {},
  target: catalogTarget,
  async run(ctx, input) {
    const entry = await findCatalogEntry(ctx.em, input.id);
    return catalogView(entry, await ctx.em.count(McpInstallation, { catalog: entry }));
  },
});

export const createMcpCatalogEntry = operation({
  name: 'create_mcp_catalog_entry',
  servers: ['admin'],
  route: { method: 'POST', path: '/api/mcp_catalog' },
  title: 'Add an MCP server to the catalog',
  description:
    'Add an MCP server that users can install. transport "remote" takes a url, and headers / query templates that pass the secrets (e.g. headers {"Authorization": "Bearer {API_KEY}"}); "stdio" a command and args (run without a shell, the secrets as environment variables). credential_fields lists the secrets an installation supplies (e.g. {name: "API_KEY", required: true}). Returns the entry.',
  input: z.strictObject({
    name: catalogName,
    description: description.default(''),
    transport: z.enum(MCP_TRANSPORTS),
    url: serverUrl.optional(),
    command: command.optional(),
    args: args.default([]),
    credential_fields: credentialFields.default([]),
    headers: headerTemplates.default({}),
    query: queryTemplates.default({}),
  }),
  output: catalogOutput,
  permission: 'installs:admin',
  effect: 'write',
  annotations: {},
  target: catalogTarget,
  async run(ctx, input) {
    const fields = { transport: input.transport, url: input.url ?? null, command: input.command ?? null, args: input.args, headers: input.headers, query: input.query };
    checkTransport(fields);
    checkTemplates({ ...fields, credentialFields: input.credential_fields });
    checkStdioFields({ transport: input.transport, credentialFields: input.credential_fields });
    if (input.transport === 'stdio') await requireAllForCommands(ctx, 'transport');
    if (await ctx.em.findOne(McpCatalogEntry, { name: input.name })) throw conflict('a catalog entry with this name already exists', 'name');
    const entry = ctx.em.create(McpCatalogEntry, { name: input.name, description: input.description, ...fields, credentialFields: input.credential_fields, launchApproved: input.transport === 'stdio' });
    await ctx.em.flush();
    ctx.setTarget(`mcp_catalog:${entry.id}`);
    return catalogView(entry, 0);
  },
});

export const updateMcpCatalogEntry = operation({
  name: 'update_mcp_catalog_entry',
  servers: ['admin'],
  route: { method: 'PATCH', path: '/api/mcp_catalog/{id}' },
  title: 'Change an MCP catalog entry',
  description:
    'Change an MCP catalog entry (by name or id): name, description, transport, url, command, args, credential_fields, headers or query; only the fields given change (null clears url or command). Secrets stored for a field that is removed are kept but no longer shown. Returns the entry.',
  input: z.strictObject({
    id: catalogRef,
    name: catalogName.optional(),
    description: description.optional(),
    transport: z.enum(MCP_TRANSPORTS).optional(),
    url: serverUrl.nullable().optional(),
    command: command.nullable().optional(),
    args: args.optional(),
    credential_fields: credentialFields.optional(),
    headers: headerTemplates.optional(),
    query: queryTemplates.optional(),
  }),
  output: catalogOutput,
  permission: 'installs:admin',
  effect: 'write',
  annotations: { idempotentHint: true },
  target: catalogTarget,
  async run(ctx, input) {
    const entry = await findCatalogEntry(ctx.em, input.id);
    if (input.name !== undefined && input.name !== entry.name && (await ctx.em.findOne(McpCatalogEntry, { name: input.name }))) {
      throw conflict('a catalog entry with this name already exists', 'name');
    }
    const next = {
      name: input.name ?? entry.name,
      description: input.description ?? entry.description,
      transport: input.transport ?? entry.transport,
      url: (input.url === undefined ? entry.url : input.url) ?? null,
      command: (input.command === undefined ? entry.command : input.command) ?? null,
      args: input.args ?? entry.args,
      credentialFields: (input.credential_fields ?? entry.credentialFields) as CredentialField[],
      headers: input.headers ?? entry.headers,
      query: input.query ?? entry.query,
    };
    checkTransport(next);
    checkTemplates(next);
    checkStdioFields(next);
    // What a stdio entry runs (its command, and the variables its users' secrets set), and where a
    // remote one sends its installations' secrets: changing either needs every permission (for a
    // remote entry, once secrets are stored for it), so installs:admin cannot redirect them.
    type Shape = { transport: string; command?: string | null; args: string[]; url?: string | null; headers: Record<string, string>; query: Record<string, string>; credentialFields: { name: string }[] };
    const launch = (e: Shape) => (e.transport === 'stdio' ? JSON.stringify([e.command, e.args, e.credentialFields.map((f) => f.name)]) : null);
    const destination = (e: Shape) => (e.transport === 'remote' ? JSON.stringify([e.url, e.headers, e.query]) : null);
    const installed = await ctx.em.count(McpInstallation, { catalog: entry });
    const changed = (name: string) => (input as Record<string, unknown>)[name] !== undefined;
    const field = ['command', 'args', 'credential_fields', 'url', 'headers', 'query'].find(changed) ?? 'transport';
    if (next.transport === 'stdio' && launch(next) !== launch(entry)) await requireAllForCommands(ctx, field);
    if (entry.transport === 'remote' && installed > 0 && destination(next) !== destination(entry)) {
      const missing = await missingPermissions(ctx);
      if (missing.length) throw new OpError('forbidden', `permission denied: "${entry.name}" has ${installed} installation(s) whose secrets go where its url, headers and query say, so changing them needs every permission; you do not hold ${missing.join(', ')}`, { field });
    }
    // Saved by someone holding every permission: its command may run.
    const launchApproved = next.transport === 'stdio' && (entry.launchApproved || (await missingPermissions(ctx)).length === 0);
    ctx.em.assign(entry, { ...next, launchApproved });
    await ctx.em.flush();
    return catalogView(entry, installed);
  },
});

export const deleteMcpCatalogEntry = operation({
  name: 'delete_mcp_catalog_entry',
  servers: ['admin'],
  route: { method: 'DELETE', path: '/api/mcp_catalog/{id}' },
  title: 'Remove an MCP server from the catalog',
  description:
    'Remove an MCP catalog entry (by name or id). Refused while it is installed, unless force is true, which uninstalls it for everyone first. Returns what was removed.',
  input: z.strictObject({ id: catalogRef, force: z.boolean().default(false) }),
  output: catalogOutput.extend({ deleted: z.literal(true), installations_removed: z.number().int() }),
  permission: 'installs:admin',
  effect: 'write',
  annotations: { destructiveHint: true },
  target: catalogTarget,
  async run(ctx, input) {
    const entry = await findCatalogEntry(ctx.em, input.id);
    const installations = await ctx.em.count(McpInstallation, { catalog: entry });
    if (installations > 0 && !input.force) {
      throw conflict(`"${entry.name}" has ${installations} installation(s); uninstall them first or pass force: true`, 'force');
    }
    const view = catalogView(entry);
    await ctx.em.nativeDelete(McpInstallation, { catalog: entry });
    ctx.em.remove(entry);
    await ctx.em.flush();
    return { ...view, deleted: true, installations_removed: installations };
  },
});
