#!/usr/bin/env bash
# Installs what the browser test (tests/e2e/browser.rs → tests/browser/chat.spec.mjs)
# needs on a Debian machine: Debian's Chromium (/usr/bin/chromium) when it is missing,
# and playwright-core at the version pinned in package-lock.json (npm ci). Node.js and
# npm must be on the machine already.
#
# Usage: tests/browser/ci.sh     (as root, for apt-get)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

log() { printf 'browser: %s\n' "$*" >&2; }

if [[ ! -x /usr/bin/chromium ]]; then
    log "installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
# The launcher script prints a harmless shell warning on some machines; the version
# line is what matters.
log "$(/usr/bin/chromium --version 2>/dev/null | tail -n 1)"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        log "no $tool on PATH: install Node.js (20 or later) and npm"
        exit 1
    fi
done
log "node $(node --version), npm $(npm --version)"

cd "$here"
npm ci --no-audit --no-fund
