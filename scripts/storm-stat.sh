#!/usr/bin/env bash
# Peerbench scenario D (10,000 subscribers, 10 topics each, ack and 10
# snapshots per subscriber) against a broker pinned to core 0, with
# `perf stat` on the broker: task-clock, context switches, page faults over
# the run (start-up and the clients' close included), and the generator's
# own figures (subscribed/s, server CPU µs per connection). Needs the
# peerbench copy `scripts/peerbench.sh` makes. Alternate two builds in one
# sitting to compare them:
#
#   bash scripts/storm-stat.sh target/release/tickwire new
#   bash scripts/storm-stat.sh /tmp/old/tickwire old
set -euo pipefail
bin=${1:?usage: storm-stat.sh BROKER_BINARY [LABEL]}
label=${2:-$bin}
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
cd "$dir"
tmp=$(mktemp -d)
taskset -c 0 "$bin" --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 \
  --log-level warn >"$tmp/broker.log" 2>&1 &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
sleep 0.5
perf stat -e task-clock,context-switches,page-faults -p $broker -o "$tmp/stat.txt" &
stat=$!
sleep 0.3
BROKER_PID=$broker OUT="$tmp/d.json" ./run.sh broker D >/dev/null 2>&1
kill -INT $stat
wait $stat 2>/dev/null || true
python3 - "$tmp/d.json" "$tmp/stat.txt" "$label" <<'PY'
import json, re, sys
storm = json.load(open(sys.argv[1]))["storm"]
text = open(sys.argv[2]).read()
def counter(name):
    return re.search(r"([\d,\.]+)\s+(?:msec\s+)?" + name, text).group(1).replace(",", "")
print(sys.argv[3], "subscribed/s %.0f" % storm["subscribed_per_s"],
      "server_us/conn", storm["server_cpu_us_per_conn"],
      "task-clock_ms", counter("task-clock"), "context-switches", counter("context-switches"),
      "page-faults", counter("page-faults"))
PY
