#!/usr/bin/env bash
# Installs Debian's Redmine (sqlite) for the Redmine integration test. Needs root (CI machines).
# Facts found by trying it on these machines: the debconf answers below avoid every prompt, and
# without BUNDLER_VERSION=2.3.15 today's bookworm bundler breaks the package's setup.
set -euo pipefail
if [ -f /usr/share/redmine/config.ru ] && [ -f /etc/redmine/default/database.yml ]; then
  echo "redmine: already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "redmine: not installed, and installing it needs root" >&2
  exit 1
fi
debconf-set-selections <<'SEL'
redmine redmine/current-instances string default
redmine redmine/instances/default/dbconfig-install boolean true
redmine redmine/instances/default/database-type select sqlite3
redmine redmine/instances/default/default-language select en
SEL
export DEBIAN_FRONTEND=noninteractive BUNDLER_VERSION=2.3.15
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends redmine redmine-sqlite thin >/dev/null
echo "redmine: installed"
