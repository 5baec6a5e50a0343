import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createHttpServer, listen } from '../lib/http/server.ts';
import { RemoteBackend } from '../lib/mcp/remote.ts';
import { OPERATIONS } from '../lib/ops/index.ts';
import { makeToken, makeUser } from './helpers/fixtures.ts';
import { keepArtifact, recordSecret, testRuntime } from './helpers/db.ts';
import { ALL_CORE_ADMIN_TOOLS } from './helpers/people.ts';
import { errorOfToolResult } from '../lib/mcp/server.ts';

// Every core and admin operation, called with the same inputs through its REST route and as an MCP
// tool over Streamable HTTP, each on its own fresh server: the results must be the same (ids,
// times and secrets aside), errors included.

type Saved = Record<string, any>;
const FACE_SECRET = recordSecret('face installation secret 1');
interface Step {
  op: string;
  input: (saved: Saved) => Record<string, unknown>;
  save?: string;
}

const STEPS: Step[] = [
  { op: 'whoami', input: () => ({}) },
  { op: 'get_my_permissions', input: () => ({}) },
  { op: 'health', input: () => ({}) },
  { op: 'list_permissions', input: () => ({}) },
  { op: 'create_user', input: () => ({ email: 'face-user@example.test', display_name: 'Face' }), save: 'user' },
  { op: 'get_user', input: (s) => ({ user_id: s.user.id }) },
  { op: 'update_user', input: (s) => ({ user_id: s.user.id, display_name: 'Face Two' }) },
  { op: 'list_users', input: () => ({ search: 'face-', limit: 10 }) },
  { op: 'create_role', input: () => ({ name: 'face-role', permissions: ['pm:read', 'users:read'] }) },
  { op: 'get_role', input: () => ({ role: 'face-role' }) },
  { op: 'update_role', input: () => ({ role: 'face-role', description: 'for faces' }) },
  { op: 'list_roles', input: () => ({}) },
  { op: 'assign_role', input: (s) => ({ user_id: s.user.id, role: 'face-role' }), save: 'assignment' },
  { op: 'list_role_members', input: () => ({ role: 'face-role' }) },
  { op: 'get_user_permissions', input: (s) => ({ user_id: s.user.id }) },
  { op: 'create_delegation', input: (s) => ({ delegate_id: s.user.id, permission: 'audit:read', reason: 'faces' }), save: 'delegation' },
  { op: 'get_delegation', input: (s) => ({ delegation_id: s.delegation.id }) },
  { op: 'list_delegations', input: (s) => ({ delegate_id: s.user.id }) },
  { op: 'list_my_delegations', input: () => ({}) },
  { op: 'revoke_delegation', input: (s) => ({ delegation_id: s.delegation.id }) },
  { op: 'create_token_for_user', input: (s) => ({ user_id: s.user.id, name: 'face', expires_in_days: 5, scopes: ['pm:read'] }), save: 'userToken' },
  { op: 'list_user_tokens', input: (s) => ({ user_id: s.user.id }) },
  { op: 'revoke_user_token', input: (s) => ({ user_id: s.user.id, token_id: s.userToken.id }) },
  { op: 'create_my_token', input: () => ({ name: 'mine', expires_in_days: 3 }), save: 'myToken' },
  { op: 'list_my_tokens', input: () => ({}) },
  { op: 'revoke_my_token', input: (s) => ({ token_id: s.myToken.id }) },
  { op: 'list_user_sessions', input: (s) => ({ user_id: s.user.id }) },
  { op: 'revoke_user_sessions', input: (s) => ({ user_id: s.user.id }) },
  { op: 'start_agent_session', input: () => ({ role: 'agent', lifetime_minutes: 30 }), save: 'agent' },
  { op: 'list_my_agent_sessions', input: () => ({}) },
  { op: 'end_agent_session', input: (s) => ({ agent_session_id: s.agent.agent_session.id }) },
  { op: 'remove_role', input: (s) => ({ user_id: s.user.id, assignment_id: s.assignment.id }) },
  { op: 'delete_role', input: () => ({ role: 'face-role' }) },
  { op: 'reset_password', input: (s) => ({ user_id: s.user.id, password: 'a face password 1' }) },
  { op: 'deactivate_user', input: (s) => ({ user_id: s.user.id }) },
  { op: 'reactivate_user', input: (s) => ({ user_id: s.user.id }) },
  { op: 'list_mcp_catalog', input: () => ({}) },
  { op: 'create_mcp_catalog_entry', input: () => ({ name: 'face-server', transport: 'remote', url: 'https://mcp.example.test/face', credential_fields: [{ name: 'API_KEY' }] }), save: 'entry' },
  { op: 'get_mcp_catalog_entry', input: (s) => ({ id: s.entry.id }) },
  { op: 'update_mcp_catalog_entry', input: () => ({ id: 'face-server', description: 'for faces' }) },
  { op: 'install_mcp_server', input: (s) => ({ catalog_id: 'face-server', user_id: s.user.id, secrets: { API_KEY: FACE_SECRET } }), save: 'install' },
  { op: 'install_mcp_server', input: (s) => ({ catalog_id: 'face-server', user_id: s.user.id }) },
  { op: 'install_mcp_server', input: (s) => ({ catalog_id: 'face-server', scope: 'org', user_id: s.user.id }) },
  { op: 'list_mcp_servers', input: (s) => ({ user_id: s.user.id }) },
  { op: 'list_my_mcp_servers', input: () => ({}) },
  { op: 'get_mcp_server', input: (s) => ({ id: s.install.id }) },
  { op: 'list_mcp_server_tools', input: (s) => ({ id: s.install.id }) },
  { op: 'test_mcp_server', input: () => ({ id: '00000000-0000-4000-8000-000000000000' }) },
  { op: 'set_mcp_server_tool_enabled', input: (s) => ({ id: s.install.id, tool: 'echo', enabled: false }) },
  { op: 'list_quarantined_mcp_tools', input: () => ({}) },
  { op: 'approve_mcp_tool', input: (s) => ({ installation_id: s.install.id, tool: 'echo', seen_hash: 'a'.repeat(64) }) },
  { op: 'reject_mcp_tool', input: (s) => ({ installation_id: s.install.id, tool: 'echo', seen_hash: 'b'.repeat(64) }) },
  { op: 'update_mcp_server', input: (s) => ({ id: s.install.id, secrets: { API_KEY: null } }) },
  { op: 'delete_mcp_catalog_entry', input: () => ({ id: 'face-server' }) },
  { op: 'uninstall_mcp_server', input: (s) => ({ id: s.install.id }) },
  { op: 'delete_mcp_catalog_entry', input: () => ({ id: 'face-server' }) },
  { op: 'register_oauth_client', input: () => ({ client_name: 'Face app', redirect_uris: ['https://face.example.test/cb', 'http://127.0.0.1:33418/cb'] }), save: 'oauthClient' },
  { op: 'list_oauth_clients', input: () => ({}) },
  { op: 'list_my_oauth_grants', input: () => ({ include_revoked: true }) },
  { op: 'list_user_oauth_grants', input: (s) => ({ user_id: s.user.id }) },
  { op: 'revoke_my_oauth_grant', input: () => ({ grant_id: '00000000-0000-4000-8000-000000000000' }) },
  { op: 'revoke_user_oauth_grant', input: (s) => ({ user_id: s.user.id, grant_id: '00000000-0000-4000-8000-000000000000' }) },
  { op: 'delete_oauth_client', input: (s) => ({ client_id: s.oauthClient.client_id }) },
  { op: 'create_mandate_project', input: () => ({ key: 'FACE', name: 'Faces' }) },
  { op: 'get_mandate_project', input: () => ({ project: 'face' }) },
  { op: 'update_mandate_project', input: () => ({ project: 'FACE', name: 'Faces two' }) },
  { op: 'bind_tracker_project', input: () => ({ project: 'FACE', tracker: 'jira', tracker_project: 'FACEJ' }) },
  { op: 'list_mandate_projects', input: () => ({ search: 'FACE' }) },
  { op: 'list_mandate_project_members', input: () => ({ project: 'FACE' }) },
  { op: 'unbind_tracker_project', input: () => ({ project: 'FACE', tracker: 'jira', tracker_project: 'FACEJ' }) },
  { op: 'delete_mandate_project', input: () => ({ project: 'FACE' }) },
  { op: 'delete_user', input: (s) => ({ user_id: s.user.id, cascade: true }) },
  { op: 'query_audit', input: () => ({ operation: 'update_user', limit: 5 }) },
  // The same refusals and errors on both faces.
  { op: 'get_user', input: () => ({ user_id: 'not-a-uuid' }) },
  { op: 'get_user', input: () => ({ user_id: '00000000-0000-4000-8000-000000000000' }) },
  { op: 'create_user', input: () => ({ email: 'face-dup@example.test', surprise: true }) },
  { op: 'create_role', input: () => ({ name: 'admin', permissions: ['pm:read'] }) },
  { op: 'list_users', input: () => ({ limit: 0 }) },
];

const TOKEN_ISSUING = new Set(['create_token_for_user', 'create_my_token', 'start_agent_session']);
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** Replaces what legitimately differs between two fresh servers: ids, times, secrets, sessions. */
function normalise(value: unknown): unknown {
  const ids = new Map<string, string>();
  const walk = (v: unknown, key = ''): unknown => {
    if (['session_id', 'request_id', 'round_trip_ms', 'prefix', 'server_version'].includes(key)) return `<${key}>`;
    if (typeof v === 'string') {
      return v
        .replace(/mnd_[A-Za-z0-9_-]{43}/g, '<token>')
        .replace(/mandate-[0-9a-f]{24}/g, '<client_id>')
        .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, '<time>')
        .replace(/agent-([a-z0-9-]*?)-?[0-9a-f]{8}(@agents\.mandate\.invalid)?/g, 'agent-$1<suffix>$2')
        .replace(UUID, (id) => {
          if (!ids.has(id)) ids.set(id, `<id${ids.size}>`);
          return ids.get(id)!;
        });
    }
    if (Array.isArray(v)) return v.map((item) => walk(item));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, item]) => [k, walk(item, k)]));
    return v;
  };
  return walk(value);
}

async function world() {
  const rt = await testRuntime();
  const admin = await makeUser(rt, { email: 'face-admin@example.test', roles: ['admin'] });
  const token = recordSecret((await makeToken(rt, admin)).raw);
  const server = createHttpServer(rt);
  const url = `http://127.0.0.1:${(await listen(server, '127.0.0.1', 0)).port}`;
  return {
    rt,
    token,
    url,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await rt.close();
    },
  };
}

async function runSteps(call: (op: string, input: Record<string, unknown>) => Promise<{ ok: boolean; value?: unknown; error?: unknown }>) {
  const saved: Saved = {};
  const results: unknown[] = [];
  for (const step of STEPS) {
    const outcome = await call(step.op, step.input(saved));
    if (step.save) {
      assert.ok(outcome.ok, `${step.op} failed: ${JSON.stringify(outcome.error)}`);
      saved[step.save] = outcome.value;
    }
    for (const secret of JSON.stringify(outcome).match(/mnd_[A-Za-z0-9_-]{43}/g) ?? []) recordSecret(secret);
    // Every answer goes to the secret sweep, except the ones that hand out a new token by design.
    if (!TOKEN_ISSUING.has(step.op)) keepArtifact('http-response', JSON.stringify(outcome));
    results.push({ op: step.op, ...outcome });
  }
  return results;
}

test('the scenario covers every core and admin operation', () => {
  assert.deepEqual([...new Set(STEPS.map((s) => s.op))].sort(), ALL_CORE_ADMIN_TOOLS);
  for (const step of STEPS) assert.ok(OPERATIONS[step.op], step.op);
});

test('REST and MCP give the same results for the same inputs, errors included', async () => {
  const restWorld = await world();
  const mcpWorld = await world();
  try {
    const rest = new RemoteBackend(restWorld.url, restWorld.token);
    const viaRest = await runSteps(async (op, input) => {
      const result = await rest.call(OPERATIONS[op]!, input);
      return result.ok ? { ok: true, value: result.value } : { ok: false, error: result.error.toBody() };
    });

    const client = new Client({ name: 'faces', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${mcpWorld.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${mcpWorld.token}` } } }));
    const viaMcp = await runSteps(async (op, input) => {
      const result = await client.callTool({ name: op, arguments: input });
      return result.isError ? { ok: false, error: errorOfToolResult(result) } : { ok: true, value: result.structuredContent };
    });
    await client.close();

    assert.equal(viaRest.length, STEPS.length);
    for (let i = 0; i < STEPS.length; i++) {
      assert.deepEqual(normalise(viaMcp[i]), normalise(viaRest[i]), `step ${i}: ${STEPS[i]!.op}`);
    }
    assert.ok(viaRest.filter((r) => (r as { ok: boolean }).ok).length >= 49, 'the successful steps really succeeded');
  } finally {
    await restWorld.close();
    await mcpWorld.close();
  }
});
