#!/usr/bin/env bash
# A short tickwire-loadtest fanout run against the real broker binary, on
# ephemeral loopback ports: proves the whole measured path works (ingest →
# router → workers → subscribers → latency report). It checks correctness
# only; performance figures live in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p tickwire-broker -p tickwire-loadtest
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
log="$(mktemp)"
report="$(mktemp)"
# --print-ready: one JSON line, {"ready":true,"ws":…,"ingest":…,…}, once
# every listener is bound (docs/operations.md).
"$target/debug/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --workers 2 \
  --print-ready >"$log" 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log" "$report"' EXIT
ready=""
for _ in $(seq 1 300); do
  ready="$(grep -m1 '^{"ready":true.*}$' "$log" || true)"
  [[ -n "$ready" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
addr() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$ready" "$1"; }
[[ -n "$ready" ]] || { echo "broker did not start:"; cat "$log"; exit 1; }
ws="$(addr ws)"
ingest="$(addr ingest)"
echo "== tickwire-loadtest fanout against $ws / $ingest"
"$target/debug/tickwire-loadtest" fanout --ws "$ws" --ingest "$ingest" \
  -s 20 -t 10 -k 3 -p 1 --rate 2000 --duration 3 --quiet --json >"$report"
python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
print(f"deliveries {r['deliveries']} of {r['expected_deliveries']}, p50 {lat['p50']} us, p99 {lat['p99']} us, "
      f"gaps {r['seq_gaps']}, errors {r['errors']['total']}")
assert r["deliveries"] > 0, "no deliveries"
assert r["deliveries"] == r["expected_deliveries"], "deliveries missing"
assert r["errors"]["total"] == 0, "errors"
assert r["seq_gaps"] == 0, "seq gaps"
print("loadtest smoke: ok")
PY
