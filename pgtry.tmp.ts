import { startCluster } from './test/helpers/pg-cluster.ts';
import { spawnSync } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
const c = await startCluster();
const env = { ...process.env, DATABASE_URL: c.url };
delete env.MANDATE_DATA_DIR;
const init = spawnSync(process.execPath, ['bin/mandate.js', 'init', '--admin-email', 'a@x.io', '--admin-password', 'secret-pass-1'], { env, encoding: 'utf8' });
const token = init.stdout.trim().split('\n').at(-1)!;
for (let k = 0; k < 3; k++) {
const t0 = performance.now();
const transport = new StdioClientTransport({ command: process.execPath, args: [process.argv[2] ?? 'servers/core.ts'], env: { ...env, MANDATE_TOKEN: token } as any, stderr: 'inherit' });
const client = new Client({ name: 't', version: '1' });
await client.connect(transport);
await client.callTool({ name: 'whoami', arguments: {} });
console.log('first result ms', Math.round(performance.now() - t0));
let t1 = performance.now(); for (let i=0;i<500;i++) await client.callTool({ name: 'whoami', arguments: {} }); console.log('calls/s', Math.round(500000/(performance.now()-t1)));
await client.close();
}
await c.stop();
