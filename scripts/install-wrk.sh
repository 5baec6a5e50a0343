#!/usr/bin/env bash
# Installs Debian's wrk, the HTTP load generator the access-churn benchmark prefers (a Node client
# costs the load core more CPU than the server spends per request). Benchmarks only: no test needs it.
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" wrk wrk /usr/bin/wrk
