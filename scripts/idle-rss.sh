#!/usr/bin/env bash
# Broker RSS per idle subscriber: a release broker (one worker) and
# tickwire-loadtest's `connections` scenario (N idle subscribers, one topic
# each), VmRSS before and after. BIN=DIR compares another build (a copy of
# an older target/release with its tickwire and tickwire-loadtest). TLS=1:
# the subscribers connect over wss to the broker's TLS listener (a
# self-signed certificate made here with openssl).
#
#   N=10000 bash scripts/idle-rss.sh
#   TLS=1 N=2000 bash scripts/idle-rss.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release}
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
tmp=$(mktemp -d)
ready=$tmp/ready
tls_args=()
if [[ ${TLS:-0} == 1 ]]; then
  source scripts/lib/test-cert.sh
  make_test_cert "$tmp"
  tls_args=(--tls-addr 127.0.0.1:0 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
fi
"$bin/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 "${tls_args[@]}" --workers 1 --log-level warn --print-ready >"$ready" &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [[ -s $ready ]] && break; sleep 0.1; done
ws=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' $ready)
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' $ready)
load_args=()
if [[ ${TLS:-0} == 1 ]]; then
  ws=$(sed -n 's/.*"wss":"\([^"]*\)".*/\1/p' $ready)
  load_args=(--tls --ca-file "$tmp/ca.pem")
fi
"$bin/tickwire-loadtest" --ws "$ws" "${load_args[@]}" --ingest "$ingest" --duration 2 --json -q connections -n ${N:-10000} --broker-pid $broker "$@" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("rss/conn", r["broker_rss_per_conn_bytes"], "subscribed", r.get("subscribed"), "before", r["broker_rss_before_bytes"], "after", r["broker_rss_after_bytes"])'
