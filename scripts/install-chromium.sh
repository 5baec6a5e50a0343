#!/usr/bin/env bash
# Installs Debian's Chromium for the OAuth browser test (playwright-core drives it; Playwright's
# own browser download does not work on these machines). Needs root (CI machines).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: already installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "chromium: not installed, and installing it needs root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
