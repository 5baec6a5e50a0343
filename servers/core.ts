// The `core` server: who am I, what I may do and why, my delegations, tokens and agent sessions,
// health. Every role gets it. Run it over stdio: MANDATE_TOKEN=... node servers/core.ts
import { runIfMain } from '../lib/mcp/main.ts';

await runIfMain(import.meta.url, ['core']);
