import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from '../runtime.ts';
import { VERSION } from '../version.ts';
import { OPERATIONS } from '../ops/index.ts';
import { servedBy } from '../pm/settings.ts';
import { HttpAuthenticator, type HttpAuthOptions } from './authenticate.ts';
import { RestApi } from './rest.ts';
import { McpHttp } from './mcp.ts';
import { OpError } from '../errors.ts';
import { SERVERS } from '../mcp/servers.ts';
import { sendJson, writeReply } from './respond.ts';
import { jsonRpcErrorReply } from './jsonrpc-error.ts';
import { guardOrigin, originPolicy } from './origin.ts';
import { sendOAuthResult } from './oauth-result.ts';
import { OAuthHttp } from './oauth.ts';
import { RESULT_PAGE } from '../ops/pm/oauth.ts';

// The HTTP face: /health, /ready, /api/... (one REST route per operation) and /mcp (/mcp/core,
// /mcp/admin, /mcp/pm: one server each; /mcp: all of them, listed by the caller's permissions).

export function createHttpServer(runtime: Runtime, options: HttpAuthOptions = {}): Server {
  const auth = new HttpAuthenticator(runtime, options);
  // Routes of PM toolsets this deployment does not serve are not routes at all (404).
  const rest = new RestApi(runtime, auth, Object.values(OPERATIONS).filter(servedBy(runtime.pm.settings)), SERVERS);
  const mcp = new McpHttp(runtime, auth, SERVERS);
  const oauth = runtime.oauth ? new OAuthHttp(runtime, runtime.oauth, auth) : null;
  const origins = originPolicy(runtime.pm.settings.publicUrl, options.allowedOrigins ?? [], options.host);
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const isMcp = path === '/mcp' || path.startsWith('/mcp/');
    // MCP clients read JSON-RPC error bodies; REST clients Mandate's own.
    if ((isMcp || path.startsWith('/api/')) && guardOrigin(origins, req, res, isMcp ? (error) => jsonRpcErrorReply(error, null) : undefined)) return;
    if (oauth && (path.startsWith('/oauth/') || path.startsWith('/.well-known/')) && oauth.handle(req, res, url)) return;
    if (path.startsWith('/api/')) {
      void rest.handle(req, res, url);
      return;
    }
    if (isMcp) {
      void mcp.handle(req, res, url).then((handled) => {
        if (!handled) writeReply(res, jsonRpcErrorReply(new OpError('not_found', `no MCP server at ${path} (try /mcp, /mcp/core, /mcp/admin, /mcp/pm)`), null));
      });
      return;
    }
    if (req.method === 'GET' && path === RESULT_PAGE) {
      sendOAuthResult(res, url);
      return;
    }
    if (req.method === 'GET' && path === '/health') {
      sendJson(res, 200, { status: 'ok', version: VERSION });
      return;
    }
    if (req.method === 'GET' && path === '/ready') {
      void runtime.ready().then((ok) =>
        ok
          ? sendJson(res, 200, { status: 'ready', database: runtime.db.kind })
          : sendJson(res, 503, { error: { code: 'unavailable', message: 'the database is not reachable' } }),
      );
      return;
    }
    sendJson(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${path}` } });
  });
}

export async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server.address() as AddressInfo;
}
