#!/usr/bin/env bash
# Tests of the JavaScript client: unit tests (a scripted WebSocket) and tests
# against the real broker (JSON and binary modes, acks, errors, snapshots,
# reconnect + resubscribe across a broker restart, auth with token refresh).
#
#   bash clients/js/test.sh [node --test args...]   e.g. test/unit.test.js
#
# Needs Node.js >= 20.11 with npm (the unit tests' fake timers use
# node:test's `mock.timers.enable({ apis })`) (the first time: `npm ci` installs the one
# test-only dependency, the `ws` WebSocket package, from package-lock.json).
# The broker binary is $TICKWIRE_BIN, else <repo>/target/debug/tickwire
# (built with cargo when missing and cargo is available). The broker embeds
# src/*.js: after changing them, rebuild it (cargo build -p tickwire-broker),
# or the test of the served files says so.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

log() { printf 'clients/js/test.sh: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1; then
    log "node not found (Node.js >= 20.11 is needed)"
    exit 1
fi
if [ "$(node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 20 || (a === 20 && b >= 11) ? 1 : 0')" != 1 ]; then
    log "Node.js $(node --version) is too old (>= 20.11 is needed)"
    exit 1
fi

if [ ! -f "$HERE/node_modules/ws/package.json" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        log "npm not found: cannot install the test dependency (ws)"
        exit 1
    fi
    log "installing node_modules (npm ci)"
    (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

BIN="${TICKWIRE_BIN:-$REPO/target/debug/tickwire}"
if [ ! -x "$BIN" ]; then
    if [ -z "${TICKWIRE_BIN:-}" ] && command -v cargo >/dev/null 2>&1; then
        log "broker binary missing: cargo build -p tickwire-broker"
        (cd "$REPO" && cargo build -p tickwire-broker)
    else
        log "broker binary not found at $BIN (build it: cargo build -p tickwire-broker, or set TICKWIRE_BIN)"
        exit 1
    fi
fi
export TICKWIRE_BIN="$BIN"

cd "$HERE"
# A test that hangs fails after 60 s instead of blocking the run.
exec node --test --test-timeout=60000 "$@"
