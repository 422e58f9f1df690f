#!/usr/bin/env bash
# User-space instructions of the broker over a peerbench scenario: the
# broker under `valgrind --tool=callgrind` (one worker), the total count
# from start-up to shutdown. Unlike CPU time on a shared VM, the count
# repeats to within a fraction of a percent, so two builds compare on
# small changes. Needs the peerbench copy `scripts/peerbench.sh` makes.
#
# By default a reconnect storm: D with 2,000 subscribers (10 topics each,
# ack and snapshots), counted per subscriber. `SCENARIO=B` counts a paced
# fan-out instead (`scripts/fanout-instructions.sh`), per delivery;
# `SCENARIO=A` a saturated one (3 s, per delivery: under callgrind the
# broker is the slow side, so its turns are long). `CACHE=1` adds
# callgrind's cache simulation: first-level and last-level data misses
# (reads and writes), per subscriber or delivery as the instructions.
# In place of the binary, `uws` counts the uWebSockets peer (the peerbench
# copy's build) under the same callgrind and generator.
#
#   bash scripts/storm-instructions.sh target/release/tickwire new
#   bash scripts/storm-instructions.sh /tmp/old/tickwire old
#   EXTRA="--no-snapshot" bash scripts/storm-instructions.sh ...   # more generator flags
#   bash scripts/storm-instructions.sh uws uws   # the peer, the same way
#   bash scripts/marginal.sh BINARY   # A or B per delivery with the set-up left out
#   KEEP=/tmp/storm.callgrind bash scripts/storm-instructions.sh ...   # keep the profile
#     (then: callgrind_annotate /tmp/storm.callgrind | head -40)
set -euo pipefail
bin=${1:?usage: storm-instructions.sh BROKER_BINARY|uws [LABEL]}
label=${2:-$(basename "$bin")}
[[ $bin == uws ]] || bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
cd "$dir"
tmp=$(mktemp -d)
cache=()
[[ ${CACHE:-0} != 1 ]] || cache=(--cache-sim=yes)
callgrind=(valgrind --tool=callgrind "${cache[@]}" --callgrind-out-file="$tmp/callgrind.out")
broker=""
trap '[[ -z $broker ]] || kill $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
if [[ $bin == uws ]]; then
  # run.sh starts (and stops) the peer itself: through a wrapper that
  # puts it under callgrind.
  peer=${PEERS:-$dir/../../peers}/uws-pubsub/uws_pubsub
  printf '#!/bin/sh\nexec %s "%s" "$@"\n' "${callgrind[*]}" "$peer" >"$tmp/uws.sh"
  chmod +x "$tmp/uws.sh"
  server=(uws) run_env=(UWS_BIN="$tmp/uws.sh")
else
  "${callgrind[@]}" "$bin" --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 \
    --log-level warn >"$tmp/broker.log" 2>&1 &
  broker=$!
  for _ in $(seq 150); do ss -ltn | grep -q ":8080 " && break; sleep 0.2; done
  server=(broker) run_env=(BROKER_PID="$broker")
fi
scenario=${SCENARIO:-D}
case $scenario in
  D) args=(--subscribers 2000) ;;
  B) args=(--rate 100 --duration "${B_SECONDS:-5}") ;;
  A) args=(--duration "${A_SECONDS:-3}") ;;
  *) echo "storm-instructions.sh: SCENARIO is D, B or A" >&2; exit 2 ;;
esac
read -r -a more <<<"${EXTRA:-}"
args+=("${more[@]}")
env "${run_env[@]}" OUT="$tmp/run.json" RUN_TIMEOUT=200 ./run.sh "${server[@]}" "$scenario" "${args[@]}" >/dev/null 2>&1
if [[ -n $broker ]]; then
  kill -INT $broker
  wait $broker 2>/dev/null || true
  broker=""
fi
# summary: Ir [Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw] with the cache simulation.
read -r -a summary <<<"$(awk '/^summary:/ {$1=""; print}' "$tmp/callgrind.out")"
total=${summary[0]}
misses() { # per $1: D1 and LL data misses, with CACHE=1
  [[ ${#summary[@]} -ge 9 ]] || return 0
  echo " D1-misses $(((summary[4] + summary[5]) / $1)) LL-misses-x1000 $(((summary[7] + summary[8]) * 1000 / $1))" \
    "D1-read-misses-total ${summary[4]} D1-write-misses-total ${summary[5]}"
}
[[ -z ${KEEP:-} ]] || cp "$tmp/callgrind.out" "$KEEP"
if [[ $scenario == D ]]; then
  subscribed=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['storm']['subscribed'])" "$tmp/run.json")
  echo "$label subscribed $subscribed instructions $total per-subscriber $((total / subscribed))$(misses "$subscribed")"
else
  delivered=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['total_delivered'])" "$tmp/run.json")
  echo "$label delivered $delivered instructions $total per-delivery $((total / delivered))$(misses "$delivered")"
fi
