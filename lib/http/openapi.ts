import { inputJsonSchema, outputJsonSchema, type InputJsonSchema } from '../ops/json-schema.ts';
import type { AnyOperation } from '../ops/operation.ts';
import { VERSION } from '../version.ts';
import { INPUT_HEADER, ROUTE_PARAM } from './wire.ts';

// The OpenAPI 3.1 document of the REST face, derived from the registry: one path item per route,
// the operation's input as path, query or body parameters, its output schema as the response. A
// JSON Schema 2020-12 document per operation, as zod writes it, is what OpenAPI 3.1 takes.

type Json = Record<string, unknown>;

const ERROR_BODY = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'e.g. invalid_input, unauthenticated, forbidden, not_found, conflict, rate_limited' },
        message: { type: 'string', description: 'what went wrong and what to do; a denial names the missing permission' },
        field: { type: 'string', description: 'the input field at fault, when there is one' },
        issues: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
        retry_after_seconds: { type: 'number' },
      },
    },
  },
};

function pathParams(op: AnyOperation): string[] {
  return [...op.route.path.matchAll(ROUTE_PARAM)].map((match) => match[1]!);
}

/** The input schema without the fields the path carries. */
function withoutPathFields(schema: InputJsonSchema, fields: string[]): InputJsonSchema {
  const properties = Object.fromEntries(Object.entries(schema.properties ?? {}).filter(([name]) => !fields.includes(name)));
  const { required: _all, ...rest } = schema;
  const required = (schema.required ?? []).filter((name) => !fields.includes(name));
  return { ...rest, properties, ...(required.length ? { required } : {}) };
}

function operationObject(op: AnyOperation): Json {
  const input = inputJsonSchema(op);
  const inPath = pathParams(op);
  const properties = input.properties ?? {};
  const parameters: Json[] = inPath.map((name) => ({ name, in: 'path', required: true, schema: properties[name] ?? { type: 'string' } }));
  let requestBody: Json | undefined;
  const rest = withoutPathFields(input, inPath);
  if (op.route.method === 'GET' || op.route.method === 'DELETE') {
    for (const [name, schema] of Object.entries(rest.properties ?? {})) {
      parameters.push({ name, in: 'query', required: (rest.required ?? []).includes(name), schema, ...(schema.type === 'array' ? { style: 'form', explode: true } : {}) });
    }
    parameters.push({
      name: INPUT_HEADER,
      in: 'header',
      required: false,
      description: 'instead of query parameters: the whole input as base64url JSON (how the remote stdio client passes values a query string cannot)',
      schema: { type: 'string' },
    });
  } else if (Object.keys(rest.properties ?? {}).length) {
    requestBody = { required: (rest.required ?? []).length > 0, content: { 'application/json': { schema: rest } } };
  }
  const success: Json = op.route.redirect
    ? { '302': { description: 'the browser step: a redirect (a client asking for JSON gets the result as JSON instead)' } }
    : {};
  return {
    operationId: op.name,
    summary: op.title,
    description: op.description + (op.route.camelCaseAliases
      ? ' The seed\'s camelCase field names (catalogId, userId, projectKey) are accepted as aliases on this route; a request that uses them is answered in camelCase.'
      : ''),
    tags: op.toolset ? [`pm:${op.toolset}`] : op.servers.length ? [...op.servers] : ['browser'],
    ...(op.permission ? { 'x-mandate-permission': op.permission } : {}),
    'x-mandate-effect': op.effect,
    ...(parameters.length ? { parameters } : {}),
    ...(requestBody ? { requestBody } : {}),
    responses: {
      ...success,
      '2XX': { description: 'success', content: { 'application/json': { schema: outputJsonSchema(op) } } },
      default: { description: 'an error (400, 401, 403, 404, 405, 409, 413, 429, 502, 503)', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    },
  };
}

/** The document for these operations (the deployment's: PM toolsets it does not serve are absent). */
export function openApiDocument(operations: readonly AnyOperation[], publicUrl?: string): Json {
  const paths: Record<string, Json> = {};
  for (const op of [...operations].sort((a, b) => a.route.path.localeCompare(b.route.path))) {
    (paths[op.route.path] ??= {})[op.route.method.toLowerCase()] = operationObject(op);
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Mandate',
      version: VERSION,
      description: 'Every route runs one operation as the caller, with exactly the permissions the caller holds or was delegated, and is audited. The MCP tools of the same names take the same input and return the same results.',
    },
    ...(publicUrl ? { servers: [{ url: publicUrl.replace(/\/+$/, '') }] } : {}),
    security: [{ bearer: [] }, { basic: [] }],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'a Mandate API token (mnd_…)' },
        basic: { type: 'http', scheme: 'basic', description: 'email and password' },
      },
      schemas: { Error: ERROR_BODY },
    },
    paths,
  };
}
