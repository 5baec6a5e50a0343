// The `pm` server: project-management tools with the caller's own tracker connection.
import { runIfMain } from '../lib/mcp/main.ts';

await runIfMain(import.meta.url, ['pm']);
