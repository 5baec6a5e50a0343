import { OpError } from '../errors.ts';
import { catalogJson, localCatalog } from '../mcp/local-catalog.ts';
import type { Toolset } from '../mcp/toolset.ts';
import { servedBy, type PmSettings } from '../pm/settings.ts';

// Distinct answers are few (subsets of four servers, read-only or not), each computed once.
const MAX_CACHED = 64;

/**
 * GET /api/mcp/tools?servers=core,pm[&read_only=true]: what this deployment serves as those MCP
 * servers, for a stdio server in remote mode to serve without the registry. Public, like the
 * OpenAPI document: it says what the interface is; what a caller may do is decided per call.
 */
export class McpToolsRoute {
  private readonly servers: Readonly<Record<string, Toolset>>;
  private readonly serves: ReturnType<typeof servedBy>;
  private readonly answers = new Map<string, string>();

  constructor(servers: Readonly<Record<string, Toolset>>, settings: Pick<PmSettings, 'toolsets' | 'allowDelete'>) {
    this.servers = servers;
    this.serves = servedBy(settings);
  }

  /** The JSON text to answer with; invalid_input naming the parameter when the query is wrong. */
  answer(url: URL): string {
    const names = this.serverNames(url.searchParams.get('servers'));
    const readOnly = readOnlyFlag(url.searchParams.get('read_only'));
    const key = `${names.join(',')}|${readOnly}`;
    let answer = this.answers.get(key);
    if (answer === undefined) {
      answer = JSON.stringify(catalogJson(localCatalog(names.map((name) => this.servers[name]!), readOnly, this.serves)));
      if (this.answers.size < MAX_CACHED) this.answers.set(key, answer);
    }
    return answer;
  }

  private serverNames(given: string | null): string[] {
    const known = Object.keys(this.servers);
    if (!given) throw new OpError('invalid_input', `servers: required, a comma-separated list of ${known.join(', ')}`, { field: 'servers' });
    const names = [...new Set(given.split(',').map((name) => name.trim()))];
    const unknown = names.find((name) => !Object.hasOwn(this.servers, name));
    if (unknown !== undefined) {
      throw new OpError('invalid_input', `servers: "${unknown.slice(0, 40)}" is not a Mandate MCP server (${known.join(', ')})`, { field: 'servers' });
    }
    return names;
  }
}

function readOnlyFlag(given: string | null): boolean {
  if (given === null || given === 'false') return false;
  if (given === 'true') return true;
  throw new OpError('invalid_input', 'read_only: expected true or false', { field: 'read_only' });
}
