#!/usr/bin/env bash
# Where a server's CPU goes over one peerbench run: `perf record` (cpu-clock,
# 4 kHz) on the server pinned to core 0, the generator on core 1, then the
# samples by binary (kernel, the server, libc) and the top symbols. For D
# the whole run is recorded (start-up is a few samples); for A five seconds
# in the middle of a ten-second run; for B (500 quotes/s, as in
# `scripts/peerbench.sh`) the same five seconds. Needs the peerbench copy and the uWS
# peer that `scripts/peerbench.sh` makes.
#
#   bash scripts/perf-split.sh D broker [BROKER_BINARY]
#   bash scripts/perf-split.sh A uws
#   TLS=1 bash scripts/perf-split.sh A broker|uws          # over wss
#   KEEP=/tmp/d.perf bash scripts/perf-split.sh D broker ...   # keep the samples
#     (then: perf annotate -i /tmp/d.perf --stdio SYMBOL)
set -euo pipefail
scenario=${1:?usage: perf-split.sh A|B|D broker|uws [BROKER_BINARY]}
server=${2:?usage: perf-split.sh A|B|D broker|uws [BROKER_BINARY]}
bin=${3:-target/release/tickwire}
case $scenario in A|B|D) ;; *) echo "perf-split.sh: A, B or D" >&2; exit 2 ;; esac
case $server in broker|uws) ;; *) echo "perf-split.sh: broker or uws" >&2; exit 2 ;; esac
source "$(dirname "$0")/lib/pinned-server.sh"
start_pinned_server "$server" "$bin"
case $scenario in
  D) perf record -F 4000 -g -p $sp -o "$tmp/perf.data" >/dev/null 2>&1 &
     args=(--subscribers 10000) ;;
  A) (sleep 3; perf record -F 4000 -g -p $sp -o "$tmp/perf.data" -- sleep 5 >/dev/null 2>&1) &
     args=(--duration 10) ;;
  B) (sleep 3; perf record -F 4000 -g -p $sp -o "$tmp/perf.data" -- sleep 5 >/dev/null 2>&1) &
     args=(--rate 500 --duration 10) ;;
esac
pp=$!
sleep 0.3
taskset -c 1 ./loadgen/target/release/peerbench --server "$server" --scenario "$scenario" \
  --server-pid $sp --ws-port $port --pub-port $pub "${gen_tls[@]}" --json-out "$tmp/run.json" "${args[@]}" >/dev/null 2>&1
[[ $scenario != D ]] || kill -INT $pp 2>/dev/null || true
wait $pp 2>/dev/null || true
# Stopped before anything is printed: a reader that closes the pipe early
# (`| head`) must not leave the server running.
stop_pinned_server
python3 - "$scenario" "$tmp/run.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[2]))
if sys.argv[1] == "D":
    s = d["storm"]
    print(f"subscribed/s {s['subscribed_per_s']:,.0f}  cpu/conn {s['server_cpu_us_per_conn']} us")
elif sys.argv[1] == "B":
    lat = d["latency"]
    print(f"p50 {lat['p50_us']:.0f} us  server cpu {d.get('server_cpu_pct')}")
else:
    cpu = d["server_cpu_pct"]
    per = cpu / 100 / d["deliveries_per_s"] * 1e9
    print(f"deliveries/s {d['deliveries_per_s'] / 1e6:.2f}M  server cpu {cpu:.0f}% ({per:.0f} ns per delivery)"
          f"  generator saturated: {d['gen_saturated']}")
PY
[[ -z ${KEEP:-} ]] || cp "$tmp/perf.data" "$KEEP"
# `head` closes the pipe early: not a failure.
perf report -i "$tmp/perf.data" --no-children -g none -n --sort dso 2>/dev/null | grep "%" | head -6 || true
perf report -i "$tmp/perf.data" --no-children -g none --sort dso,sym 2>/dev/null | grep "%" | head -25 || true
