#!/usr/bin/env bash
# The chaos test of issue 21 (chaos-tests/README.md): three brokers and a real
# nats-server, 50 subscribers (the JavaScript client under node, the Python
# client) on broker A, a feed on broker C; A is killed with SIGKILL, then
# NATS is restarted (test_chaos.py); and the reproduction of a broker bug it
# found (test_sliced_resume.py, xfail). About 20 s on a 2-core machine.
#
#   bash chaos-tests/test.sh [pytest args...]
#
# Needs: node (>= 18) and clients/js/node_modules (npm ci, made here when
# missing: the `ws` package), the Python client's virtualenv
# (clients/python/.venv, made here through clients/python/test.sh when
# missing), nats-server ($NATS_SERVER or on PATH; scripts/test.sh installs
# Debian's), and the broker: $TICKWIRE_BIN, else target/debug/tickwire
# (built with cargo when missing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"

log() { printf 'chaos-tests/test.sh: %s\n' "$*" >&2; }

command -v node >/dev/null 2>&1 || { log "node not found (Node.js >= 18 is needed)"; exit 1; }
if [ -z "${NATS_SERVER:-}" ] && ! command -v nats-server >/dev/null 2>&1; then
    log "nats-server not found (apt-get install nats-server, or set NATS_SERVER)"
    exit 1
fi

if [ ! -f "$REPO/clients/js/node_modules/ws/package.json" ]; then
    command -v npm >/dev/null 2>&1 || { log "npm not found: cannot install clients/js/node_modules (ws)"; exit 1; }
    log "installing clients/js/node_modules (npm ci)"
    (cd "$REPO/clients/js" && npm ci --no-audit --no-fund --loglevel=error)
fi

VENV_PY="$REPO/clients/python/.venv/bin/python"
if ! "$VENV_PY" -c 'import tickwire, websockets, pytest' >/dev/null 2>&1; then
    log "making the Python client's virtualenv (clients/python/test.sh)"
    TICKWIRE_VENV_ONLY=1 bash "$REPO/clients/python/test.sh"
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
export CHAOS_PYTHON="$VENV_PY"
export PYTHONDONTWRITEBYTECODE=1

cd "$HERE"
# Every wait in the test has its own deadline; this bounds the whole run
# (SIGTERM: the test stops what it started, by PID, and removes its temp dir).
exec timeout --signal=TERM --kill-after=30 300 \
    "$VENV_PY" -m pytest -q -s -rxX -p no:cacheprovider "$@"
