// The `admin` server: users, roles and assignments, permissions, delegations, tokens for users,
// sessions, audit queries. Tools are listed only to callers holding their permission.
import { ADMIN_OPERATIONS } from '../lib/ops/index.ts';
import type { Toolset } from '../lib/mcp/toolset.ts';
import { runIfMain } from '../lib/mcp/main.ts';

export const admin: Toolset = {
  name: 'admin',
  title: 'Mandate admin',
  instructions:
    'Mandate admin: manage users, roles, delegations, API tokens, sessions and read the audit log. Every call is checked against your permissions and audited.',
  operations: ADMIN_OPERATIONS,
};

await runIfMain(import.meta.url, [admin]);
