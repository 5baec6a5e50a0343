#!/usr/bin/env bash
# Installs Debian's Chromium for the OAuth browser test (playwright-core drives it; Playwright's
# own browser download does not work on these machines).
set -euo pipefail
bash "$(dirname "$0")/apt-install.sh" chromium chromium /usr/bin/chromium
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown')"
