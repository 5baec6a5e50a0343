// Starts one of Mandate's MCP servers over stdio: `node servers/core.js` (or admin.js, pm.js).
// Plain JavaScript so it can turn on Node's compile cache before anything heavy is loaded (about
// 90 ms off every start), then runs the TypeScript sources in a checkout, dist/ otherwise.
import { existsSync } from 'node:fs';
import module from 'node:module';

export async function launch(name) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 17)) {
    process.stderr.write(`mandate ${name}: needs Node.js >= 22.17 (this is ${process.version}); run it through scripts/with-node22.sh\n`);
    process.exit(1);
  }
  module.enableCompileCache?.();
  const source = new URL('../lib/mcp/launch.ts', import.meta.url);
  const built = new URL('../dist/lib/mcp/launch.js', import.meta.url);
  const { launchServers } = await import((existsSync(source) ? source : built).href);
  await launchServers([name]);
}
