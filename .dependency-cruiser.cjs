// The house rules of DESIGN.md, checked in CI (`npm run lint:layers`, run by .ci/run):
// transport -> identity -> runner -> operation -> entities / upstream, and nothing the other way.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'lib-not-servers',
      comment: 'servers/ are entry points only: nothing in lib/ imports them (the registry of servers is lib/mcp/servers.ts).',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^servers/' },
    },
    {
      name: 'transports-not-database',
      comment: 'servers/ and lib/http know nothing of the database: no entities, no ORM, no driver (they get units of work from the runtime).',
      severity: 'error',
      from: { path: '^(servers|lib/http)/' },
      to: { path: '^lib/db/|(^|/)node_modules/(@mikro-orm|pg|@electric-sql)/' },
    },
    {
      name: 'ops-not-transports',
      comment: 'lib/ops knows nothing of MCP or HTTP.',
      severity: 'error',
      from: { path: '^lib/ops/' },
      to: { path: '^lib/(mcp|http)/|(^|/)node_modules/@modelcontextprotocol/' },
    },
    {
      name: 'access-not-transports-or-ops',
      comment: 'lib/access (permissions, resolver, guard) knows nothing of transports or operations.',
      severity: 'error',
      from: { path: '^lib/access/' },
      to: { path: '^lib/(mcp|http|ops)/|(^|/)node_modules/@modelcontextprotocol/' },
    },
    {
      name: 'identity-not-ops-or-transports',
      comment: 'lib/identity comes before the runner: it imports neither operations nor transports.',
      severity: 'error',
      from: { path: '^lib/identity/' },
      to: { path: '^lib/(ops|mcp|http)/' },
    },
    {
      name: 'oauth-not-ops-or-transports',
      comment: 'lib/oauth (the authorization server) sits with identity, before the runner: it imports neither operations nor transports.',
      severity: 'error',
      from: { path: '^lib/oauth/' },
      to: { path: '^lib/(ops|mcp|http)/|(^|/)node_modules/@modelcontextprotocol/' },
    },
    {
      name: 'upstream-not-ops-or-transports',
      comment: 'lib/pm (providers, the upstream client) is below the operations: it imports neither them nor transports.',
      severity: 'error',
      from: { path: '^lib/pm/' },
      to: { path: '^lib/(ops|mcp|http)/' },
    },
    {
      name: 'gateway-not-ops-or-transports',
      comment: 'lib/gateway (sessions with installed MCP servers, as their client) is below the operations, like lib/pm.',
      severity: 'error',
      from: { path: '^lib/gateway/' },
      to: { path: '^lib/(ops|mcp|http)/' },
    },
    {
      name: 'data-not-above',
      comment: 'lib/db (entities, ORM) and lib/audit import nothing above them.',
      severity: 'error',
      from: { path: '^lib/(db|audit)/' },
      to: { path: '^lib/(ops|mcp|http|pm|gateway|oauth|identity/(?!caller))' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
