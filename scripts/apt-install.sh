#!/usr/bin/env bash
# apt-install.sh NAME PACKAGE BINARY: installs Debian's PACKAGE (root only; CI machines) unless
# BINARY is there already. The test that needs it skips, saying why, where it cannot be installed.
set -euo pipefail
name=$1 package=$2 binary=$3
if [ -x "$binary" ]; then
  echo "$name: already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "$name: not installed, and installing it needs root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "$package" >/dev/null
