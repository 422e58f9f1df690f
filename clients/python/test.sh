#!/usr/bin/env bash
# Tests of the Python client against a real broker.
#
#   bash clients/python/test.sh [pytest args...]
#
# Creates (or reuses) a virtualenv in clients/python/.venv, installs the
# package in editable mode with its test extras, and runs pytest. Needs
# python3 (>= 3.10) with pip, and PyPI (or a configured index) the first
# time. The broker binary is $TICKWIRE_BIN, else <repo>/target/debug/tickwire
# (built with cargo when missing and cargo is available).
# Environment: PYTHON (interpreter for the venv, default python3);
# TICKWIRE_VENV_ONLY=1 makes the virtualenv and stops there.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"

log() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v "$PY" >/dev/null 2>&1; then
    log "$PY not found (set PYTHON to a Python >= 3.10 interpreter)"
    exit 1
fi

venv_ok() {
    [ -x "$VENV/bin/python" ] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null &&
        "$VENV/bin/python" -m pip --version >/dev/null 2>&1
}

create_venv() {
    rm -rf "$VENV"
    log "creating virtualenv in $VENV"
    if "$PY" -m venv "$VENV" >/dev/null 2>&1 && venv_ok; then
        return 0
    fi
    # Debian/Ubuntu without python3-venv: no ensurepip. Make the venv without
    # pip and let the system pip (>= 22.3) install pip into it.
    rm -rf "$VENV"
    if "$PY" -m venv --without-pip "$VENV" >/dev/null 2>&1 &&
        "$PY" -m pip --python "$VENV/bin/python" install --quiet pip >/dev/null 2>&1 && venv_ok; then
        return 0
    fi
    rm -rf "$VENV"
    if "$PY" -m virtualenv "$VENV" >/dev/null 2>&1 && venv_ok; then
        return 0
    fi
    log "could not create a virtualenv with $PY (tried venv, venv --without-pip + pip --python, virtualenv)"
    return 1
}

venv_ok || create_venv

# Reinstall only when the package metadata changed (editable: sources are
# picked up live) or a dependency is missing.
STAMP="$VENV/.tickwire-install-stamp"
WANT="$(cat "$HERE/pyproject.toml" | cksum)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] ||
    ! "$VENV/bin/python" -c 'import tickwire, websockets, pytest' >/dev/null 2>&1; then
    log "installing tickwire (editable) with test extras"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$HERE[test]"
    printf '%s' "$WANT" >"$STAMP"
fi

# TICKWIRE_VENV_ONLY=1: only make the virtualenv (chaos-tests/test.sh uses it).
if [ "${TICKWIRE_VENV_ONLY:-}" = 1 ]; then
    exit 0
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
exec "$VENV/bin/python" -m pytest -q "$@"
