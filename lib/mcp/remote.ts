import { OpError, ERROR_STATUS, type ErrorBody } from '../errors.ts';
import type { RunResult } from '../ops/runner.ts';
import { ABSENT, INPUT_HEADER, ROUTE_PARAM } from '../http/wire.ts';
import type { ToolBackend } from './backend.ts';
import type { CatalogJson, ServedTool } from './catalog.ts';

const TIMEOUT_MS = 30_000;

function segment(value: unknown): string {
  return typeof value === 'string' && value.length > 0 ? encodeURIComponent(value).replace(/~/g, '%7E') : ABSENT;
}

function toError(status: number, body: unknown): OpError {
  const error = (body as { error?: ErrorBody } | null)?.error;
  if (error && typeof error.message === 'string' && error.code in ERROR_STATUS) {
    return new OpError(error.code, error.message, {
      ...(error.field !== undefined ? { field: error.field } : {}),
      ...(error.issues !== undefined ? { issues: error.issues } : {}),
    });
  }
  return new OpError(status === 401 ? 'unauthenticated' : 'unavailable', `Mandate answered HTTP ${status}`);
}

/**
 * Runs tools through a Mandate server's REST API with the caller's API token: the remote mode of
 * a stdio server (MANDATE_URL), which has no database. Each call goes to its operation's own route
 * with exactly the input the tool got, so validation, guard, audit and errors are the server's.
 */
export class RemoteBackend implements ToolBackend<ServedTool> {
  private readonly baseUrl: string;
  private readonly token: string;

  constructor(baseUrl: string, token: string) {
    this.baseUrl = baseUrl;
    this.token = token;
  }

  private async request(method: string, path: string, init: { body?: string; headers?: Record<string, string> } = {}) {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...init.headers },
        body: init.body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new OpError('unavailable', `cannot reach Mandate at ${this.baseUrl}: ${(error as Error).name === 'TimeoutError' ? 'timed out' : (error as Error).message}`);
    }
    const text = await response.text();
    let body: unknown = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      throw new OpError('unavailable', `Mandate at ${this.baseUrl} answered something that is not JSON (HTTP ${response.status})`);
    }
    return { status: response.status, body };
  }

  /** Who the token belongs to; refuses (unauthenticated) when the server does not accept it. */
  async whoami(): Promise<unknown> {
    const { status, body } = await this.request('GET', '/api/me');
    if (status !== 200) throw toError(status, body);
    return body;
  }

  /** What the server serves as these MCP servers: the tools, their routes, and what to tell the client. */
  async catalog(servers: readonly string[], readOnly: boolean): Promise<CatalogJson> {
    const query = new URLSearchParams({ servers: servers.join(','), ...(readOnly ? { read_only: 'true' } : {}) });
    const { status, body } = await this.request('GET', `/api/mcp/tools?${query}`);
    if (status !== 200) throw toError(status, body);
    const catalog = body as Partial<CatalogJson> | null;
    if (!catalog || typeof catalog.name !== 'string' || !Array.isArray(catalog.tools) || typeof catalog.not_served !== 'object') {
      throw new OpError('unavailable', `Mandate at ${this.baseUrl} answered no tool catalog (is it older than this server?)`);
    }
    return catalog as CatalogJson;
  }

  async visible<T extends ServedTool>(tools: readonly T[]): Promise<T[]> {
    const { status, body } = await this.request('GET', '/api/me/tools');
    if (status !== 200) return [];
    const names = new Set((body as { tools?: string[] }).tools ?? []);
    return tools.filter((tool) => names.has(tool.name));
  }

  async call(op: ServedTool, args: unknown): Promise<RunResult<unknown>> {
    const input = (args ?? {}) as Record<string, unknown>;
    const path = op.route.path.replace(ROUTE_PARAM, (_m, name: string) => segment(input[name]));
    const json = JSON.stringify(input);
    try {
      const { status, body } =
        op.route.method === 'GET' || op.route.method === 'DELETE'
          ? await this.request(op.route.method, path, { headers: { [INPUT_HEADER]: Buffer.from(json).toString('base64url') } })
          : await this.request(op.route.method, path, { body: json, headers: { 'content-type': 'application/json' } });
      return status >= 200 && status < 300 ? { ok: true, value: body } : { ok: false, error: toError(status, body) };
    } catch (error) {
      return { ok: false, error: error instanceof OpError ? error : new OpError('unavailable', 'Mandate could not be reached') };
    }
  }

  // A tool this server does not serve is refused here; the Mandate server never sees the call.
  refuse(): void {}
}
