#!/usr/bin/env bash
# Installs Debian's PgBouncer for the fault tests (Mandate behind PgBouncer in transaction pooling
# mode; the test starts its own pgbouncer with a configuration of its own).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" pgbouncer pgbouncer /usr/sbin/pgbouncer
# The package's own service is not wanted.
(service pgbouncer stop || invoke-rc.d pgbouncer stop) >/dev/null 2>&1 || true
echo "pgbouncer: $(/usr/sbin/pgbouncer --version 2>/dev/null | head -1 || echo 'version unknown')"
