#!/usr/bin/env bash
# Installs Debian's PgBouncer for the fault tests (Mandate behind PgBouncer in transaction pooling
# mode; the test starts its own pgbouncer). Needs root (CI machines).
set -euo pipefail
if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  echo "pgbouncer: already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "pgbouncer: not installed, and installing it needs root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
# The package's own service is not wanted: the test runs pgbouncer with a configuration of its own.
(service pgbouncer stop || invoke-rc.d pgbouncer stop) >/dev/null 2>&1 || true
echo "pgbouncer: installed ($(/usr/sbin/pgbouncer --version 2>/dev/null | head -1 || echo 'version unknown'))"
