// The `core` server: who am I, what I may do and why, my delegations, tokens and agent sessions,
// health. Every role gets it. Run it over stdio: MANDATE_TOKEN=... node servers/core.ts
import { SELF_OPERATIONS } from '../lib/ops/index.ts';
import type { Toolset } from '../lib/mcp/toolset.ts';
import { runIfMain } from '../lib/mcp/main.ts';

export const core: Toolset = {
  name: 'core',
  title: 'Mandate core',
  instructions:
    'Mandate core: you act under the mandate of the user whose token started this server. whoami says who that is, get_my_permissions what you may do and why.',
  operations: SELF_OPERATIONS,
};

await runIfMain(import.meta.url, [core]);
