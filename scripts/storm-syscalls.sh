#!/usr/bin/env bash
# The syscalls a server makes over peerbench scenario D (10,000
# subscribers), tickwire or uWebSockets alike: the server pinned to core 0,
# the generator to core 1, `perf stat` counting the server's epoll, socket,
# read/write and futex calls, context switches and task-clock (start-up
# excluded; the clients' close at the end included), per connection.
# SCENARIO=B: the same over scenario B at RATE quotes/s (default 500, as
# in `scripts/peerbench.sh`), per quote published (connect and warm-up
# included). SCENARIO=A: per delivery (saturated fan-out). PEERBENCH_ARGS: more generator flags. Needs the peerbench copy and the uWS peer that
# `scripts/peerbench.sh` makes.
#
#   bash scripts/storm-syscalls.sh broker [BROKER_BINARY]
#   bash scripts/storm-syscalls.sh uws
#   SCENARIO=B bash scripts/storm-syscalls.sh broker|uws [BROKER_BINARY]
#   SCENARIO=A bash scripts/storm-syscalls.sh broker|uws [BROKER_BINARY]
set -euo pipefail
server=${1:?usage: storm-syscalls.sh broker|uws [BROKER_BINARY]}
bin=${2:-target/release/tickwire}
case $server in broker|uws) ;; *) echo "storm-syscalls.sh: broker or uws" >&2; exit 2 ;; esac
source "$(dirname "$0")/lib/pinned-server.sh"
start_pinned_server "$server" "$bin"
sleep 0.5
events=task-clock,context-switches
for call in epoll_wait accept4 epoll_ctl recvfrom sendto read write futex; do
  events+=",syscalls:sys_enter_$call"
done
perf stat -e "$events" -p $sp -o "$tmp/stat.txt" &
stat=$!
sleep 0.3
scenario=${SCENARIO:-D}
case $scenario in
  D) load=(--subscribers 10000) ;;
  B) load=(--rate "${RATE:-500}") ;;
  A) load=() ;;
  *) echo "storm-syscalls.sh: SCENARIO is D, B or A" >&2; exit 2 ;;
esac
read -r -a more <<<"${PEERBENCH_ARGS:-}"
load+=("${more[@]}")
taskset -c 1 ./loadgen/target/release/peerbench --server "$server" --scenario "$scenario" --server-pid $sp \
  --ws-port $port --pub-port $pub --json-out "$tmp/d.json" "${load[@]}" >/dev/null 2>&1
kill -INT $stat
wait $stat 2>/dev/null || true
# Stopped before anything is printed: a reader that closes the pipe early
# (`| head`) must not leave the server running.
stop_pinned_server
python3 - "$tmp/d.json" "$tmp/stat.txt" "$server" "$scenario" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
if sys.argv[4] == "D":
    storm = report["storm"]
    n, per = storm["subscribed"], "connection"
    print(f"{sys.argv[3]}: {n} subscribed, {storm['subscribed_per_s']:,.0f}/s")
elif sys.argv[4] == "A":
    n, per = report["total_delivered"], "delivery"
    print(f"{sys.argv[3]}: {n} delivered, {report['deliveries_per_s'] / 1e6:.2f}M/s in the window")
else:
    n, per = report["total_published"], "quote"
    lat = report["latency"]
    print(f"{sys.argv[3]}: {n} quotes published, p50 {lat['p50_us']:.0f} µs, p99 {lat['p99_us']:.0f} µs")
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) >= 2 and not line.startswith("#"):
        try:
            value = float(parts[0].replace(",", ""))
        except ValueError:
            continue
        name = parts[2] if parts[1] == "msec" else parts[1]
        name = name.replace("syscalls:sys_enter_", "")
        unit = " µs" if parts[1] == "msec" else ""
        scale = 1000.0 if parts[1] == "msec" else 1.0
        print(f"  {name:16} {value * scale / n:8.2f}{unit} per {per}")
PY
