import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Runtime } from '../runtime.ts';
import { VERSION } from '../version.ts';

// The HTTP face. For now it answers /health and /ready; /mcp and /api/... mount here.

function send(res: import('node:http').ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createHttpServer(runtime: Runtime): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/health') {
      send(res, 200, { status: 'ok', version: VERSION });
      return;
    }
    if (req.method === 'GET' && path === '/ready') {
      runtime.db.orm.em
        .fork()
        .execute('select 1 as ok', [], 'get')
        .then(() => send(res, 200, { status: 'ready', database: runtime.db.kind }))
        .catch(() => send(res, 503, { error: { code: 'unavailable', message: 'the database is not reachable' } }));
      return;
    }
    send(res, 404, { error: { code: 'not_found', message: `no route for ${req.method} ${path}` } });
  });
}

export async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server.address() as AddressInfo;
}
