#!/usr/bin/env bash
# Broker RSS per idle subscriber: a release broker (one worker) and
# tickwire-loadtest's `connections` scenario (N idle subscribers, one topic
# each), VmRSS before and after. BIN=DIR compares another build (a copy of
# an older target/release with its tickwire and tickwire-loadtest).
#
#   N=10000 bash scripts/idle-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release}
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
tmp=$(mktemp -d)
ready=$tmp/ready
"$bin/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --workers 1 --log-level warn --print-ready >"$ready" &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [[ -s $ready ]] && break; sleep 0.1; done
ws=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' $ready)
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' $ready)
"$bin/tickwire-loadtest" --ws "$ws" --ingest "$ingest" --duration 2 --json -q connections -n ${N:-10000} --broker-pid $broker "$@" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("rss/conn", r["broker_rss_per_conn_bytes"], "subscribed", r.get("subscribed"), "before", r["broker_rss_before_bytes"], "after", r["broker_rss_after_bytes"])'
