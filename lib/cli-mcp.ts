import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IN_MEMORY } from './config.ts';
import { authenticateEnvToken } from './identity/authenticate.ts';
import type { UserCaller } from './identity/caller.ts';
import { endAgentSessionOp, startAgentSession } from './ops/index.ts';
import type { Runtime } from './runtime.ts';
import { AUTH_MODES, CLIENTS, clientConfig, DEFAULT_CLIENT, httpClientConfig, OAUTH_ONLY_CLIENTS, type AuthMode, type Client, type HttpClient } from './mcp/client-config.ts';
import { AGENT_ROLES, SERVERS, type RoleServers } from './mcp/servers.ts';
import { help, int, str, UsageError, withRuntime, type Command, type Io } from './cli-support.ts';

const roleNames = Object.keys(AGENT_ROLES).join(', ');
const serverNames = Object.keys(SERVERS).join(', ');

function roleServers(role: string | undefined): RoleServers {
  if (!role) throw new UsageError(`no role: set AGENT_ROLE or pass --role (${roleNames})`);
  const servers = AGENT_ROLES[role];
  if (!servers) throw new UsageError(`unknown role "${role}"; roles: ${roleNames}`);
  return servers;
}

/** The servers to run: all of the role's when none is named; a named one must be the role's. */
function chooseServers(role: string | undefined, named: string[]): { names: string[]; readOnly: boolean } {
  for (const name of named) if (!SERVERS[name]) throw new UsageError(`unknown server "${name}"; servers: ${serverNames}`);
  if (!role) {
    if (!named.length) throw new UsageError(`name a server (${serverNames}) or pass --role`);
    return { names: named, readOnly: false };
  }
  const allowed = roleServers(role);
  const refused = named.filter((name) => !allowed.servers.includes(name as never));
  if (refused.length) throw new UsageError(`role ${role} does not get the ${refused.join(', ')} server (it gets ${allowed.servers.join(', ')})`);
  return { names: named.length ? named : allowed.servers, readOnly: allowed.readOnly };
}

async function asTokenUser(runtime: Runtime, io: Io): Promise<UserCaller> {
  const token = io.config.token;
  if (!token) throw new UsageError('MANDATE_TOKEN is not set: agent sessions are started by a user, with that user\'s API token');
  return authenticateEnvToken(runtime.db.orm.em.fork(), token);
}

async function runAsUser<O>(runtime: Runtime, io: Io, op: Parameters<Runtime['runner']['run']>[0], input: unknown): Promise<O> {
  const caller = await asTokenUser(runtime, io);
  const result = await runtime.runner.run(op, caller, input);
  if (!result.ok) throw result.error;
  return result.value as O;
}

export const mcpCommands: Record<string, Command> = {
  stdio: {
    usage: 'mandate stdio [--role R] [server...]',
    summary: `Serve MCP over stdio as the user of MANDATE_TOKEN: the named servers (${serverNames}) in one process, or all of the role's.`,
    options: { ...help, role: { type: 'string' } },
    positionals: 3,
    async run(args, _io, positionals) {
      const { names, readOnly } = chooseServers(str(args, 'role'), positionals);
      const { launchServers } = await import('./mcp/launch.ts');
      await launchServers(names, readOnly);
      return 0;
    },
  },
  config: {
    usage: `mandate config [--client ${[...CLIENTS, ...OAUTH_ONLY_CLIENTS].join('|')}] (--role R [--entrypoint PATH] | --url https://MANDATE [--auth token|oauth])`,
    summary:
      `Print an MCP client's configuration (default client: ${DEFAULT_CLIENT}): with --role, the stdio servers of that role (one entry per server on PostgreSQL, one composed entry on the embedded database); with --url, the deployment over Streamable HTTP, with an API token (--auth token, the default) or with OAuth sign-in and no token at all (--auth oauth; claude-ai and chatgpt take only that). Never a secret.`,
    options: { ...help, role: { type: 'string' }, client: { type: 'string' }, entrypoint: { type: 'string' }, url: { type: 'string' }, auth: { type: 'string' } },
    async run(args, io) {
      const client = str(args, 'client') ?? DEFAULT_CLIENT;
      const httpOnly = (OAUTH_ONLY_CLIENTS as readonly string[]).includes(client);
      if (!CLIENTS.includes(client as Client) && !httpOnly) throw new UsageError(`--client must be one of ${[...CLIENTS, ...OAUTH_ONLY_CLIENTS].join(', ')}`);
      const auth = str(args, 'auth') ?? 'token';
      if (!(AUTH_MODES as readonly string[]).includes(auth)) throw new UsageError(`--auth must be one of ${AUTH_MODES.join(', ')}`);
      const url = str(args, 'url');
      if (url !== undefined) {
        if (!/^https?:\/\/[^/\s]+/.test(url) || /[\s"'$`\\]/.test(url)) throw new UsageError('--url must be an http:// or https:// URL, e.g. https://mandate.example.com');
        io.out(httpClientConfig(client as HttpClient, url, auth as AuthMode));
        return 0;
      }
      if (httpOnly) throw new UsageError(`${client} connects over HTTP only: give --url (and the server MANDATE_PUBLIC_URL for OAuth)`);
      const role = str(args, 'role');
      const servers = roleServers(role);
      const entrypoint = resolve(str(args, 'entrypoint') ?? fileURLToPath(new URL('../entrypoint.sh', import.meta.url)));
      const db = io.config.database;
      const embedded = db.kind === 'embedded';
      const dataDir = db.kind === 'embedded' && db.dataDir !== IN_MEMORY ? resolve(db.dataDir) : undefined;
      io.out(JSON.stringify(clientConfig({ role: role!, roleServers: servers, client: client as Client, entrypoint, embedded, dataDir }), null, 2));
      return 0;
    },
  },
};

export const agentCommands: Record<string, Command> = {
  'agent start': {
    usage: 'mandate agent start --role R [--lifetime-minutes N] [--delegate-admin] [--label L] [--pm-connection ID|NAME]... [--no-pm-connections] [--format json|env]',
    summary: "Start an agent session under MANDATE_TOKEN's user: prints the agent's token and role (JSON, or env lines for a runner).",
    options: {
      ...help,
      role: { type: 'string' },
      'lifetime-minutes': { type: 'string' },
      'delegate-admin': { type: 'boolean' },
      label: { type: 'string' },
      'pm-connection': { type: 'string', multiple: true },
      'no-pm-connections': { type: 'boolean' },
      format: { type: 'string' },
    },
    async run(args, io) {
      const format = str(args, 'format') ?? 'json';
      if (format !== 'json' && format !== 'env') throw new UsageError('--format must be json or env');
      if (!str(args, 'role')) throw new UsageError('--role is required');
      const named = args['pm-connection'] as string[] | undefined;
      if (named && args['no-pm-connections']) throw new UsageError('give --pm-connection or --no-pm-connections, not both');
      const input = {
        // Default (neither flag): the spawner's default connection.
        pm_connections: args['no-pm-connections'] ? [] : named,
        role: str(args, 'role'),
        lifetime_minutes: int(args, 'lifetime-minutes'),
        delegate_admin: Boolean(args['delegate-admin']),
        label: str(args, 'label'),
      };
      return withRuntime(io, 'agent start', async (runtime) => {
        const started = await runAsUser<{ role: string; token: string; agent_session: { id: string; expires_at: string }; skipped: { permission: string; reason: string }[] }>(
          runtime, io, startAgentSession, input,
        );
        if (format === 'env') {
          for (const skip of started.skipped) io.err(`skipped ${skip.permission}: ${skip.reason}`);
          io.out(`AGENT_ROLE=${started.role}`);
          io.out(`MANDATE_AGENT_SESSION=${started.agent_session.id}`);
          io.out(`MANDATE_TOKEN=${started.token}`);
        } else {
          io.out(JSON.stringify(started, null, 2));
        }
        return 0;
      });
    },
  },
  'agent end': {
    usage: 'mandate agent end AGENT_SESSION_ID',
    summary: 'End an agent session: revokes its token and delegations, ends its sessions, deactivates the agent (as MANDATE_TOKEN\'s user).',
    options: { ...help },
    positionals: 1,
    async run(_args, io, positionals) {
      const id = positionals[0];
      if (!id) throw new UsageError('give the agent session id (mandate agent end ID)');
      return withRuntime(io, 'agent end', async (runtime) => {
        const ended = await runAsUser<{ id: string; ended_now: boolean }>(runtime, io, endAgentSessionOp, { agent_session_id: id });
        io.out(ended.ended_now ? `agent session ${ended.id} ended` : `agent session ${ended.id} had already ended`);
        return 0;
      });
    },
  },
};
