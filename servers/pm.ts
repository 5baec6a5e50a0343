// The `pm` server: project-management tools with the caller's own tracker connection. Its tools
// arrive with the PM providers; until then it serves an empty tool list.
import type { Toolset } from '../lib/mcp/toolset.ts';
import { runIfMain } from '../lib/mcp/main.ts';

export const pm: Toolset = {
  name: 'pm',
  title: 'Mandate PM',
  instructions: 'Mandate PM: issues and projects in your own tracker, with your own connection.',
  operations: [],
};

await runIfMain(import.meta.url, [pm]);
