#!/usr/bin/env bash
# Bytes and broker CPU per delivery of each wire (issue 23), one sitting, on
# loopback: a release broker (one worker) and tickwire-loadtest's fanout
# (its feed changes bid, ask, last and volume on every quote) with each of
# json, json+deflate, binary, binary+delta, json+delta, json+delta+deflate.
# Broker CPU is read from /proc/PID/stat around each run.
#
#   bash scripts/wire-bytes.sh [subscribers] [rate] [seconds]
#
# Prints one line per wire: bytes per delivery (loadtest's
# wire_bytes_per_delivery), deliveries, broker CPU ns per delivery.
set -euo pipefail
cd "$(dirname "$0")/.."
subs="${1:-200}" rate="${2:-10000}" secs="${3:-8}"
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
bin=target/release
ready="$(mktemp)"
"$bin/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --workers 1 \
  --log-level warn --print-ready >"$ready" &
broker=$!
trap 'kill "$broker" 2>/dev/null || true; rm -f "$ready"' EXIT
for _ in $(seq 100); do [[ -s "$ready" ]] && break; sleep 0.1; done
ws=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' "$ready")
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' "$ready")
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$broker/stat"; }
printf '%-20s %10s %12s %14s\n' wire bytes/deliv deliveries cpu_ns/deliv
run() {
  local label=$1; shift
  local before after report
  before=$(cpu)
  report=$("$bin/tickwire-loadtest" --ws "$ws" --ingest "$ingest" --duration "$secs" --json -q "$@" \
    fanout -s "$subs" -t 100 -k 10 --rate "$rate")
  after=$(cpu)
  python3 - "$label" "$before" "$after" "$tck" <<PY
import json, sys
r = json.loads('''$report''')
label, before, after, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
d = r["deliveries"]
ns = (after - before) / tck * 1e9 / d if d else float("nan")
print(f"{label:<20} {r['wire_bytes_per_delivery']:>10.1f} {d:>12} {ns:>14.0f}")
PY
}
run json --format json
run json+deflate --format json --deflate
run binary --format binary
run binary+delta --format binary --delta
run json+delta --format json --delta
run json+delta+deflate --format json --delta --deflate
