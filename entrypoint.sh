#!/bin/sh
# Launches the Mandate MCP servers an agent's role gets, over stdio, or prints the MCP client
# configuration for them. The role comes from AGENT_ROLE; the user from MANDATE_TOKEN.
#   entrypoint.sh serve            all of the role's servers in one process (works on the embedded database)
#   entrypoint.sh serve core       one server (one process per server is fine on PostgreSQL)
#   entrypoint.sh config [--client claude-code|claude-desktop|cursor|vscode]   (default claude-code)
#   entrypoint.sh config --url https://MANDATE [--client …]                   the deployment over HTTP
set -eu
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: entrypoint.sh serve [core|admin|pm] | entrypoint.sh config [--client claude-code|claude-desktop|cursor|vscode] [--url https://MANDATE]" >&2
}

if [ -z "${AGENT_ROLE:-}" ]; then
  echo "entrypoint.sh: AGENT_ROLE is not set; set it to admin, developer, viewer, auditor or agent" >&2
  exit 2
fi

# Node 22 provisioned by scripts/with-node22.sh, when the system Node is older.
node_bin=node
if [ -x "$here/.tools/node22/node_modules/node/bin/node" ]; then
  node_bin="$here/.tools/node22/node_modules/node/bin/node"
fi

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  serve) exec "$node_bin" "$here/bin/mandate.js" stdio --role "$AGENT_ROLE" "$@" ;;
  config) exec "$node_bin" "$here/bin/mandate.js" config --role "$AGENT_ROLE" --entrypoint "$here/entrypoint.sh" "$@" ;;
  *) usage; exit 2 ;;
esac
