import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
for (let k = 0; k < 3; k++) {
const t0 = performance.now();
const transport = new StdioClientTransport({ command: process.execPath, args: ['bench/fixtures/echo-server.mjs'], stderr: 'inherit' });
const client = new Client({ name: 't', version: '1' });
await client.connect(transport);
await client.callTool({ name: 'echo', arguments: {} });
console.log('first result ms', Math.round(performance.now() - t0));
let t1 = performance.now(); for (let i=0;i<2000;i++) await client.callTool({ name: 'echo', arguments: {} }); console.log('calls/s', Math.round(2000000/(performance.now()-t1)));
await client.close();
}
