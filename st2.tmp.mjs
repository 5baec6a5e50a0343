const t = performance.now();
await import('@modelcontextprotocol/sdk/server/index.js'); const a = performance.now();
await import('@mikro-orm/postgresql'); const b = performance.now();
await import('@mikro-orm/migrations'); const c = performance.now();
console.log('sdk', Math.round(a - t), 'pg driver', Math.round(b - a), 'migrations after', Math.round(c - b));
