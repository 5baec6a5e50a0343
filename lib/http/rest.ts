import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { knownError, OpError } from '../errors.ts';
import { inputJsonSchema } from '../ops/json-schema.ts';
import type { AnyOperation, HttpMethod } from '../ops/operation.ts';
import type { Runtime } from '../runtime.ts';
import type { HttpAuthenticator } from './authenticate.ts';
import { readJsonBody, sendError, sendJson, sendRedirect } from './respond.ts';
import { ABSENT, INPUT_HEADER, ROUTE_PARAM } from './wire.ts';
import { acceptCamelCase, answerInCamelCase } from './camel-case-aliases.ts';
import { openApiDocument } from './openapi.ts';
import { McpToolsRoute } from './mcp-tools-route.ts';
import type { Toolset } from '../mcp/toolset.ts';

interface Route {
  op: AnyOperation;
  method: HttpMethod;
  pattern: RegExp;
  params: string[];
}

function compile(op: AnyOperation): Route {
  const params: string[] = [];
  const source = op.route.path.replace(ROUTE_PARAM, (_m, name: string) => {
    params.push(name);
    return '([^/]+)';
  });
  return { op, method: op.route.method, pattern: new RegExp(`^${source}/?$`), params };
}

/** Query-string values are text: turn them into what the operation's schema expects. */
function fromQuery(op: AnyOperation, query: URLSearchParams): Record<string, unknown> {
  const properties = inputJsonSchema(op).properties ?? {};
  // Null prototype: a parameter named "__proto__" is just an unknown field the schema refuses.
  const input: Record<string, unknown> = Object.create(null);
  for (const key of new Set(query.keys())) {
    const values = query.getAll(key);
    const type = Object.hasOwn(properties, key) ? properties[key]!.type : undefined;
    const one = values[values.length - 1]!;
    if (type === 'array') input[key] = values;
    else if ((type === 'integer' || type === 'number') && /^-?\d+(\.\d+)?$/.test(one)) input[key] = Number(one);
    else if (type === 'boolean' && (one === 'true' || one === 'false')) input[key] = one === 'true';
    else input[key] = one;
  }
  return input;
}

/**
 * The REST face of every operation: one route each, from the operation's own `route`. The input
 * is the path's `{fields}` plus the query string (GET, DELETE) or the JSON body (POST, PATCH), and
 * goes through the same runner (validation, guard, audit) as an MCP tool call.
 */
export class RestApi {
  private readonly routes: Route[];
  private readonly runtime: Runtime;
  private readonly auth: HttpAuthenticator;
  private readonly operations: readonly AnyOperation[];
  private openapi: string | undefined;
  private readonly catalog: McpToolsRoute;

  constructor(runtime: Runtime, auth: HttpAuthenticator, operations: readonly AnyOperation[], servers: Readonly<Record<string, Toolset>>) {
    this.runtime = runtime;
    this.auth = auth;
    this.operations = operations;
    this.routes = operations.map(compile);
    this.catalog = new McpToolsRoute(servers, runtime.pm.settings);
  }

  /** Handles the request if it is an /api route; false when it is not. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith('/api/')) return false;
    if (url.pathname === '/api/openapi.json' && req.method === 'GET') {
      // The interface is public knowledge; what a caller may do is decided per call.
      this.openapi ??= JSON.stringify(openApiDocument(this.operations, this.runtime.pm.settings.publicUrl || undefined));
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' }).end(this.openapi);
      return true;
    }
    if (url.pathname === '/api/mcp/tools' && req.method === 'GET') {
      try {
        const catalog = this.catalog.answer(url);
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' }).end(catalog);
      } catch (error) {
        sendError(res, knownError(error) ?? new OpError('internal', 'internal error; the server log has the details'));
      }
      return true;
    }
    if (url.pathname === '/api/me/tools' && req.method === 'GET') {
      await this.visibleTools(req, res);
      return true;
    }
    const matching = this.routes.filter((route) => route.pattern.test(url.pathname));
    if (matching.length === 0) {
      sendError(res, new OpError('not_found', `no route for ${req.method} ${url.pathname}`));
      return true;
    }
    const route = matching.find((candidate) => candidate.method === req.method);
    if (!route) {
      const allow = matching.map((candidate) => candidate.method).join(', ');
      sendJson(res, 405, { error: { code: 'method_not_allowed', message: `${url.pathname} takes ${allow}` } }, { allow });
      return true;
    }
    const arrived = performance.now();
    try {
      const caller = await this.auth.authenticate(req, arrived);
      const { input, aliased } = await this.input(route, req, url);
      const result = await this.runtime.runner.run(route.op, caller, input, {
        startedAt: arrived,
        requestId: requestIdOf(req),
        clientAddress: this.auth.clientAddress(req),
      });
      if (!result.ok) sendError(res, result.error);
      else if (route.op.route.redirect && !asksForJson(req)) sendRedirect(res, route.op.route.redirect(result.value));
      else sendJson(res, route.op.route.status?.(result.value) ?? 200, aliased ? answerInCamelCase(result.value) : result.value);
    } catch (error) {
      const known = knownError(error);
      if (known) sendError(res, known);
      else {
        this.runtime.log.error({ err: { type: (error as Error)?.name } , route: route.op.name }, 'REST request failed');
        sendError(res, new OpError('internal', 'internal error; the server log has the details'));
      }
    }
    return true;
  }

  /** The operations the caller may see listed (remote stdio servers list tools from this). */
  private async visibleTools(req: IncomingMessage, res: ServerResponse) {
    try {
      // One access-change read and (on a cache miss only) one fork serve both checks.
      const arrived = performance.now();
      const em = this.runtime.scope();
      const caller = await this.auth.authenticate(req, arrived, em);
      const held = await this.runtime.resolver.resolveAnywhere(em, caller, arrived);
      if (!held.live) throw new OpError('unauthenticated', 'invalid or expired credentials');
      const names = this.routes.filter(({ op }) => op.permission === null || held.grants.has(op.permission)).map(({ op }) => op.name);
      sendJson(res, 200, { tools: names });
    } catch (error) {
      sendError(res, knownError(error) ?? new OpError('internal', 'internal error; the server log has the details'));
    }
  }

  private async input(route: Route, req: IncomingMessage, url: URL): Promise<{ input: Record<string, unknown>; aliased: boolean }> {
    const values = route.pattern.exec(url.pathname)!.slice(1);
    const fromPath: Record<string, string> = {};
    route.params.forEach((name, i) => {
      // "~" stands for "not given" (the remote client's way to pass a missing or non-text value
      // in the body or X-Mandate-Input instead, so validation sees exactly what the tool got).
      if (values[i] !== ABSENT) fromPath[name] = decodeURIComponent(values[i]!);
    });
    const given = route.method === 'GET' || route.method === 'DELETE' ? this.queryInput(route.op, req, url) : await readJsonBody(req);
    const { input: rest, aliased } = route.op.route.camelCaseAliases
      ? acceptCamelCase(given, Object.keys(inputJsonSchema(route.op).properties ?? {}))
      : { input: given, aliased: false };
    for (const name of Object.keys(fromPath)) {
      if (name in rest && rest[name] !== fromPath[name]) {
        throw new OpError('invalid_input', `${name}: given in the path; leave it out of the request`, { field: name });
      }
    }
    return { input: { ...rest, ...fromPath }, aliased };
  }

  /** GET and DELETE: typed query parameters, or the exact input as JSON in X-Mandate-Input. */
  private queryInput(op: AnyOperation, req: IncomingMessage, url: URL): Record<string, unknown> {
    const header = req.headers[INPUT_HEADER];
    if (typeof header !== 'string') return fromQuery(op, url.searchParams);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    } catch {
      throw new OpError('invalid_input', `${INPUT_HEADER} must be base64url of a JSON object`, { field: INPUT_HEADER });
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new OpError('invalid_input', `${INPUT_HEADER} must be base64url of a JSON object`, { field: INPUT_HEADER });
    }
    return parsed as Record<string, unknown>;
  }
}

/** A program asking for JSON (the remote client does) gets a browser step's result as JSON, not a 302. */
function asksForJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? '';
  return /application\/json/i.test(accept) && !/text\/html/i.test(accept);
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
}
