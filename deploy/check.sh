#!/usr/bin/env bash
# Checks the operations kit in deploy/ with real tools:
#   1. promtool check rules / test rules / check config (Debian package
#      `prometheus`, installed when promtool is missing);
#   2. deploy/check_dashboard.py: every metric in the Grafana dashboard and the
#      alert rules is one a real broker serves (started here with a NATS
#      cluster link), every served family has a panel, and a real Prometheus
#      scrapes the broker, evaluates the rules and runs every panel query;
#   3. the systemd unit with `systemd-analyze verify`, when that tool is
#      present: a complaint about a line of the unit fails; anything else is
#      reported as a warning (a container may lack parts of systemd).
#
# Usage: deploy/check.sh            (from any directory)
# Env:   TICKWIRE_BIN      broker binary (default target/debug/tickwire, relative to the repo root)
#        CHECK_PROMETHEUS  0 = skip running a real Prometheus in step 2 (default 1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo

install_pkg() { # package, binary it provides
    echo "== $2 not found: installing Debian package $1"
    if ! command -v apt-get >/dev/null; then
        echo "check.sh: $2 is missing and there is no apt-get to install $1; install it and re-run" >&2
        exit 1
    fi
    # Debian's postinst may try to start a service; harmless.
    if ! timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/tmp/tickwire-check-apt.log 2>&1; then
        # A stale package index is the usual cause: refresh it once and retry.
        timeout 300 $sudo apt-get update -q >>/tmp/tickwire-check-apt.log 2>&1 || true
        if ! timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >>/tmp/tickwire-check-apt.log 2>&1; then
            tail -n 20 /tmp/tickwire-check-apt.log >&2
            echo "check.sh: could not install $1 (which provides $2) with apt-get; see /tmp/tickwire-check-apt.log" >&2
            exit 1
        fi
    fi
    if ! command -v "$2" >/dev/null; then
        echo "check.sh: installed $1 but $2 is still not on PATH" >&2
        exit 1
    fi
}

command -v promtool >/dev/null || install_pkg prometheus promtool
command -v nats-server >/dev/null || install_pkg nats-server nats-server
command -v python3 >/dev/null || { echo "check.sh: python3 is required" >&2; exit 1; }

start=$SECONDS

echo "== promtool check rules"
promtool check rules deploy/prometheus/alerts.yml
echo "== promtool test rules"
promtool test rules deploy/prometheus/alerts_test.yml
echo "== promtool check config"
promtool check config deploy/prometheus/prometheus.yml

echo "== dashboard and alerts against a running broker"
prom_args=()
if [[ "${CHECK_PROMETHEUS:-1}" != 0 ]] && command -v prometheus >/dev/null; then
    prom_args=(--prometheus "$(command -v prometheus)")
fi
# check_dashboard.py bounds itself (--timeout) and stops what it started;
# timeout(1) is the backstop.
timeout --kill-after=10 55 python3 deploy/check_dashboard.py --timeout 45 ${prom_args[@]+"${prom_args[@]}"}

if command -v systemd-analyze >/dev/null; then
    echo "== systemd-analyze verify deploy/systemd/tickwire.service"
    # verify insists that ExecStart= exists: check a copy that runs the
    # binary under test instead of /usr/local/bin/tickwire.
    bin="${TICKWIRE_BIN:-target/debug/tickwire}"
    [[ "$bin" = /* ]] || bin="$root/$bin"
    unit_dir="$(mktemp -d)"
    trap 'rm -rf "$unit_dir"' EXIT
    sed "s#^ExecStart=/usr/local/bin/tickwire#ExecStart=$bin#" deploy/systemd/tickwire.service >"$unit_dir/tickwire.service"
    rc=0
    out=$(timeout 20 systemd-analyze verify "$unit_dir/tickwire.service" 2>&1) || rc=$?
    # Complaints about a line of the unit (unknown key, bad value) are ours:
    # fatal. Anything else may be the environment (no systemd in a container).
    if grep -q 'tickwire\.service:[0-9]' <<<"$out"; then
        echo "$out" >&2
        echo "check.sh: systemd-analyze verify found problems in deploy/systemd/tickwire.service" >&2
        exit 1
    elif [[ $rc -eq 0 && -z "$out" ]]; then
        echo "systemd-analyze verify: OK"
    else
        echo "systemd-analyze verify: WARNING (exit $rc; not fatal, may be the environment): $out"
    fi
fi

echo "== deploy/check.sh: OK ($((SECONDS - start)) s, not counting package installs)"
