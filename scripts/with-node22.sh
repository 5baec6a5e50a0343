#!/usr/bin/env bash
# Puts Node >= 22.17 first on PATH, installing it from the npm registry (package node@22) into
# ./.tools/node22 when the system Node is older. Two ways to use it:
#   source scripts/with-node22.sh          # this shell now has Node 22
#   scripts/with-node22.sh npm test        # run one command with Node 22
_mandate_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_mandate_node_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=17)?0:1)'
}
if ! _mandate_node_ok; then
  _mandate_tools="$_mandate_root/.tools/node22"
  if [ ! -x "$_mandate_tools/node_modules/node/bin/node" ]; then
    echo "with-node22: system Node is $(node --version 2>/dev/null || echo absent); installing node@22 from the npm registry into .tools/node22" >&2
    npm install --silent --no-save --no-audit --no-fund --prefix "$_mandate_tools" node@22 >&2 || {
      echo "with-node22: could not install node@22 from the npm registry" >&2
      return 1 2>/dev/null || exit 1
    }
  fi
  export PATH="$_mandate_tools/node_modules/node/bin:$PATH"
  _mandate_node_ok || { echo "with-node22: Node 22 still not first on PATH" >&2; return 1 2>/dev/null || exit 1; }
fi
# Executed (not sourced) with a command: run it under Node 22.
if [ "${BASH_SOURCE[0]}" = "$0" ] && [ $# -gt 0 ]; then exec "$@"; fi
