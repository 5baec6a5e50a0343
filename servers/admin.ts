// The `admin` server: users, roles and assignments, permissions, delegations, tokens for users,
// sessions, audit queries. Tools are listed only to callers holding their permission.
import { runIfMain } from '../lib/mcp/main.ts';

await runIfMain(import.meta.url, ['admin']);
