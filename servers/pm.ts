// The `pm` server: project-management tools with the caller's own tracker connection.
import type { Toolset } from '../lib/mcp/toolset.ts';
import { PM_OPERATIONS } from '../lib/ops/index.ts';
import { runIfMain } from '../lib/mcp/main.ts';

export const pm: Toolset = {
  name: 'pm',
  title: 'Mandate PM',
  instructions: 'Mandate PM: issues and projects in your own tracker, with your own connection.',
  operations: PM_OPERATIONS,
};

await runIfMain(import.meta.url, [pm]);
