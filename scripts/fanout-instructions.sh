#!/usr/bin/env bash
# User-space instructions of the broker over a paced fan-out: the broker
# under `valgrind --tool=callgrind` (one worker), peerbench scenario B at
# 100 quotes/s for 5 s (1,000 subscribers, ~100 per quote: about 70,000
# deliveries with the warm-up), the total from start-up to shutdown. Wall
# clock on this VM moves ±15% between runs; the count repeats to a
# fraction of a percent, so two builds compare on the delivery path. Needs
# the peerbench copy `scripts/peerbench.sh` makes.
#
#   bash scripts/fanout-instructions.sh target/release/tickwire new
#   bash scripts/fanout-instructions.sh /tmp/old/tickwire old
set -euo pipefail
bin=${1:?usage: fanout-instructions.sh BROKER_BINARY [LABEL]}
label=${2:-$(basename "$bin")}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
cd "$dir"
tmp=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out" "$bin" --workers 1 \
  --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 --log-level warn >"$tmp/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 150); do ss -ltn | grep -q ":8080 " && break; sleep 0.2; done
BROKER_PID=$broker OUT="$tmp/b.json" RUN_TIMEOUT=200 ./run.sh broker B --rate 100 --duration 5 >/dev/null 2>&1
kill -INT $broker
wait $broker 2>/dev/null || true
delivered=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total_delivered'])" "$tmp/b.json")
total=$(awk '/^summary:/ {print $2}' "$tmp/callgrind.out")
echo "$label delivered $delivered instructions $total per-delivery $((total / delivered))"
