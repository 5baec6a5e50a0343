import { parseArgs } from 'node:util';
import { text } from 'node:stream/consumers';
import { ConfigError, describeDatabase, loadConfig } from './config.ts';
import { EmbeddedDatabaseBusyError } from './db/embedded-lock.ts';
import { Role, RoleAssignment, User } from './db/entities/index.ts';
import { OpError } from './errors.ts';
import { createHttpServer, listen } from './http/server.ts';
import { openRuntime, startAgentSessionSweep, startGatewaySweep, startAuditMaintenance, startOAuthSweep } from './runtime.ts';
import { createTokenForUser, createUser, listOauthClients, registerOauthClient } from './ops/index.ts';
import { VERSION } from './version.ts';
import { agentCommands, mcpCommands } from './cli-mcp.ts';
import { vaultCommands } from './cli-vault.ts';
import { auditCommands } from './cli-audit.ts';
import { projectCommands } from './cli-project.ts';
import { help, int, runAsSystem, str, UsageError, withRuntime, type Command } from './cli-support.ts';

/** How long closing may take after the drain (MANDATE_DRAIN_SECONDS) (the audit flushed, the pool closed) before the process exits regardless. */
const CLOSE_MS = 5_000;

const commands: Record<string, Command> = {
  init: {
    usage: 'mandate init [--admin-email E --admin-password P]',
    summary: 'Create the database, apply migrations and create the first admin; prints its API token once, alone on the last line. Safe to run again.',
    options: { ...help, 'admin-email': { type: 'string' }, 'admin-password': { type: 'string' } },
    async run(args, io) {
      const email = str(args, 'admin-email') ?? io.config.admin.email;
      const password = str(args, 'admin-password') ?? io.config.admin.password;
      if (Boolean(email) !== Boolean(password)) {
        throw new UsageError('give both the admin email and password (--admin-email/--admin-password or MANDATE_ADMIN_EMAIL/MANDATE_ADMIN_PASSWORD)');
      }
      return withRuntime(io, 'init', async (runtime) => {
        io.out(`database ready: ${describeDatabase(io.config.database)}`);
        if (!email || !password) {
          io.out('no admin requested: pass --admin-email and --admin-password to create the first admin');
          return 0;
        }
        const em = runtime.db.orm.em.fork();
        const same = await em.findOne(User, { email: email.trim().toLowerCase() });
        if (same) {
          io.out(`admin ${same.email} exists; nothing to do (its token was shown when it was created; use "mandate token create" for another)`);
          return 0;
        }
        const adminRole = await em.findOneOrFail(Role, { name: 'admin' });
        const other = await em.findOne(RoleAssignment, { role: adminRole, project: null }, { populate: ['user'] });
        if (other) {
          io.out(`an admin exists already (${other.user.email}); not creating ${email} (use "mandate user create" for more users)`);
          return 0;
        }
        const user = await runAsSystem<{ id: string; email: string }>(runtime, createUser, {
          email, password, display_name: 'Administrator', roles: ['admin'],
        });
        const token = await runAsSystem<{ token: string; expires_at: string }>(runtime, createTokenForUser, {
          user_id: user.id, name: 'mandate init', expires_in_days: 365,
        });
        io.out(`created admin ${user.email} (id ${user.id})`);
        io.out(`API token for ${user.email}, expires ${token.expires_at}; it is shown this once, store it now:`);
        io.out(token.token);
        return 0;
      });
    },
  },
  migrate: {
    usage: 'mandate migrate',
    summary: 'Apply the migrations that have not run yet (they also run at every start).',
    options: { ...help },
    async run(_args, io) {
      const runtime = await openRuntime(io.config, { command: 'mandate migrate', migrate: false, defaultLogLevel: 'warn' });
      try {
        const applied = await runtime.db.migrate();
        io.out(applied.length ? `applied ${applied.join(', ')}` : 'the database is up to date');
        return 0;
      } finally {
        await runtime.close();
      }
    },
  },
  serve: {
    usage: 'mandate serve [--host H] [--port N]',
    summary: 'Start the HTTP server (GET /health, GET /ready) on 127.0.0.1:8080 unless told otherwise.',
    options: { ...help, host: { type: 'string' }, port: { type: 'string' } },
    async run(args, io) {
      const port = int(args, 'port') ?? io.config.http.port;
      if (port > 65535) throw new UsageError('--port must be at most 65535');
      const host = str(args, 'host') ?? io.config.http.host;
      const runtime = await openRuntime(io.config, { command: 'mandate serve' });
      const server = createHttpServer(runtime, io.config.http);
      startAgentSessionSweep(runtime);
      startOAuthSweep(runtime);
      startGatewaySweep(runtime);
      startAuditMaintenance(runtime, io.config.auditRetentionDays);
      const address = await listen(server, host, port).catch(async (error: Error) => {
        await runtime.close();
        throw new Error(`cannot listen on ${host}:${port}: ${error.message}`);
      });
      runtime.log.info({ host: address.address, port: address.port, database: describeDatabase(io.config.database) }, 'listening');
      io.err(`mandate ${VERSION} listening on http://${address.address}:${address.port} (${describeDatabase(io.config.database)})`);
      await new Promise<void>((resolve) => {
        // Stop accepting, let calls in flight finish (idle connections close at once, busy ones
        // after MANDATE_DRAIN_SECONDS), then flush the audit log (runtime.close) before exiting.
        const drainMs = io.config.http.drainMs;
        const stop = () => {
          runtime.log.info({ drainMs }, 'stopping: no new connections; letting calls in flight finish');
          server.close(() => resolve());
          // A keep-alive connection goes idle once its call is answered: closed then, not at its timeout.
          server.closeIdleConnections();
          setInterval(() => server.closeIdleConnections(), 50).unref();
          setTimeout(() => server.closeAllConnections(), drainMs).unref();
          // A call stuck in the database (a lock held elsewhere) must not keep the process alive.
          setTimeout(() => {
            runtime.log.error('stopping: calls still in flight after the drain; exiting');
            process.exit(1);
          }, drainMs + CLOSE_MS).unref();
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await runtime.close();
      return 0;
    },
  },
  'user create': {
    usage: 'mandate user create --email E [--name N] [--display-name D] [--type human|agent|service] [--password P | --password-stdin] [--role R]...',
    summary: 'Create a user; prints it as JSON.',
    options: {
      ...help,
      email: { type: 'string' },
      name: { type: 'string' },
      'display-name': { type: 'string' },
      type: { type: 'string' },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      role: { type: 'string', multiple: true },
    },
    async run(args, io) {
      if (!str(args, 'email')) throw new UsageError('--email is required');
      if (args.password !== undefined && args['password-stdin']) throw new UsageError('give --password or --password-stdin, not both');
      const password = args['password-stdin'] ? (await text(io.stdin)).replace(/\r?\n$/, '') : str(args, 'password');
      return withRuntime(io, 'user create', async (runtime) => {
        const user = await runAsSystem(runtime, createUser, {
          email: str(args, 'email'),
          name: str(args, 'name'),
          display_name: str(args, 'display-name'),
          type: str(args, 'type'),
          password,
          roles: args.role,
        });
        io.out(JSON.stringify(user, null, 2));
        return 0;
      });
    },
  },
  'token create': {
    usage: 'mandate token create --user EMAIL|ID --name N [--expires-days 1-365] [--scope PERMISSION]...',
    summary: 'Create an API token for a user; prints it once, alone on the last line.',
    options: {
      ...help,
      user: { type: 'string' },
      name: { type: 'string' },
      'expires-days': { type: 'string' },
      scope: { type: 'string', multiple: true },
    },
    async run(args, io) {
      const who = str(args, 'user');
      if (!who) throw new UsageError('--user is required (an email or a user id)');
      if (!str(args, 'name')) throw new UsageError('--name is required (what the token is for)');
      const expiresInDays = int(args, 'expires-days');
      return withRuntime(io, 'token create', async (runtime) => {
        const em = runtime.db.orm.em.fork();
        const user = await em.findOne(User, who.includes('@') ? { email: who.toLowerCase() } : /^[0-9a-f-]{36}$/i.test(who) ? { id: who } : { name: who.toLowerCase() });
        if (!user) throw new OpError('not_found', `user ${who} not found`, { field: 'user' });
        const token = await runAsSystem<{ token: string; expires_at: string; id: string }>(runtime, createTokenForUser, {
          user_id: user.id,
          name: str(args, 'name'),
          expires_in_days: expiresInDays,
          scopes: args.scope,
        });
        io.out(`API token ${token.id} for ${user.email}, expires ${token.expires_at}; it is shown this once, store it now:`);
        io.out(token.token);
        return 0;
      });
    },
  },
  'oauth-client add': {
    usage: 'mandate oauth-client add --name N --redirect-uri URI [--redirect-uri URI]... [--confidential]',
    summary: 'Pre-register an OAuth client (its exact redirect URIs); prints it as JSON, and a confidential client\'s secret once, alone on the last line.',
    options: { ...help, name: { type: 'string' }, 'redirect-uri': { type: 'string', multiple: true }, confidential: { type: 'boolean' } },
    async run(args, io) {
      if (!str(args, 'name')) throw new UsageError('--name is required (the name users see on the consent page)');
      const redirects = args['redirect-uri'];
      if (!Array.isArray(redirects) || redirects.length === 0) throw new UsageError('--redirect-uri is required (once per redirect URI)');
      return withRuntime(io, 'oauth-client add', async (runtime) => {
        const { client_secret: secret, ...client } = await runAsSystem<{ client_secret: string | null; client_id: string }>(runtime, registerOauthClient, {
          client_name: str(args, 'name'),
          redirect_uris: redirects,
          confidential: args.confidential === true,
        });
        io.out(JSON.stringify(client, null, 2));
        if (secret) {
          io.out(`client secret of ${client.client_id}; it is shown this once, store it now:`);
          io.out(secret);
        }
        return 0;
      });
    },
  },
  'oauth-client list': {
    usage: 'mandate oauth-client list',
    summary: 'List the OAuth clients registered here (by an administrator or dynamically) as JSON; never a secret.',
    options: { ...help },
    async run(_args, io) {
      return withRuntime(io, 'oauth-client list', async (runtime) => {
        io.out(JSON.stringify(await runAsSystem(runtime, listOauthClients, {}), null, 2));
        return 0;
      });
    },
  },
};

Object.assign(commands, agentCommands, mcpCommands, vaultCommands, auditCommands, projectCommands);

function topHelp(): string {
  const lines = [`mandate ${VERSION} — MCP servers that act under someone's mandate`, '', 'Usage: mandate <command> [options]', '', 'Commands:'];
  for (const [name, command] of Object.entries(commands)) lines.push(`  ${name.padEnd(14)} ${command.summary}`);
  lines.push('', 'Run "mandate <command> --help" for its options.');
  lines.push('Environment: DATABASE_URL (PostgreSQL; otherwise embedded PGlite in MANDATE_DATA_DIR, default ./.mandate), MANDATE_LOG_LEVEL, MANDATE_LOG_FILE.');
  return lines.join('\n');
}

function commandHelp(name: string, command: Command): string {
  const flags = Object.entries(command.options)
    .map(([flag, spec]) => `  --${flag}${spec.type === 'string' ? ' VALUE' : ''}${spec.multiple ? ' (repeatable)' : ''}`)
    .join('\n');
  return `${command.usage}\n\n${command.summary}\n\nOptions:\n${flags}`;
}

/** Runs the CLI; returns the exit code. Every failure is one line on stderr, never a stack trace. */
export async function main(argv: string[], streams = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }): Promise<number> {
  const err = (line: string) => streams.stderr.write(`${line}\n`);
  const out = (line: string) => streams.stdout.write(`${line}\n`);
  const write = (chunk: string) => new Promise<void>((resolve) => (streams.stdout.write(chunk) ? resolve() : streams.stdout.once('drain', () => resolve())));
  const first = argv[0];
  if (!first || first === '--help' || first === '-h' || first === 'help') {
    out(topHelp());
    return first ? 0 : 2;
  }
  if (first === '--version') {
    out(VERSION);
    return 0;
  }
  const two = `${first} ${argv[1] ?? ''}`.trim();
  const name = commands[two] ? two : commands[first] ? first : undefined;
  if (!name) {
    const group = Object.keys(commands).filter((key) => key.startsWith(`${first} `));
    err(group.length ? `mandate: "${first}" needs a subcommand: ${group.map((g) => g.split(' ')[1]).join(', ')}` : `mandate: unknown command "${first}" (see mandate --help)`);
    return 2;
  }
  const command = commands[name]!;
  const rest = argv.slice(name.split(' ').length);
  try {
    const { values, positionals } = parseArgs({ args: rest, options: command.options, allowPositionals: true, strict: true });
    if (values.help) {
      out(commandHelp(name, command));
      return 0;
    }
    if (positionals.length > (command.positionals ?? 0)) {
      throw new UsageError(`unexpected argument "${positionals[command.positionals ?? 0]}" (see mandate ${name} --help)`);
    }
    const config = loadConfig();
    return await command.run(values, { out, write, err, config, stdin: streams.stdin }, positionals);
  } catch (error) {
    if (error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err(`mandate ${name}: ${(error as Error).message.split('\n')[0]!.split('. To specify')[0]}`);
      return 2;
    }
    if (error instanceof OpError || error instanceof ConfigError || error instanceof EmbeddedDatabaseBusyError) {
      err(`mandate ${name}: ${error.message}`);
      return 1;
    }
    err(`mandate ${name}: ${(error as Error).message?.split('\n')[0] ?? String(error)}`);
    return 1;
  }
}
