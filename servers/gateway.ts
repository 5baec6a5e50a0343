// The `gateway` server: the tools of the MCP servers installed for the user, through Mandate
// (their secrets stay here; every call is guarded and audited). MANDATE_TOKEN=... node servers/gateway.ts
import { runIfMain } from '../lib/mcp/main.ts';

await runIfMain(import.meta.url, ['gateway']);
