#!/usr/bin/env bash
# Runs one peerbench scenario for several servers in turn, PAIRS rounds:
# each RUNNER is `uws` or the path of a broker binary (one worker). Prints
# one line per run: the scenario's figures (D: subscribed/s and server CPU
# per connection; A: deliveries/s; B: p50 and server CPU), and whether the
# generator saturated. Alternating in one sitting is how two builds, or
# tickwire and uWebSockets, compare on this VM, whose speed drifts between
# sittings. Needs the peerbench copy and the uWS peer that
# `scripts/peerbench.sh` makes. EXTRA: more generator flags.
#
#   PAIRS=5 bash scripts/alternate.sh D target/release/tickwire uws
#   PAIRS=3 EXTRA="--rate 500" bash scripts/alternate.sh B /tmp/old/tickwire target/release/tickwire
set -euo pipefail
scenario=${1:?usage: alternate.sh A|B|D RUNNER [RUNNER...]}
shift
[[ $# -ge 1 ]] || { echo "usage: alternate.sh A|B|D RUNNER [RUNNER...]" >&2; exit 2; }
runners=()
for r in "$@"; do
  if [[ $r == uws ]]; then runners+=(uws); else runners+=("$(cd "$(dirname "$r")" && pwd)/$(basename "$r")"); fi
done
dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
cd "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq 1 "${PAIRS:-3}"); do
  for r in "${runners[@]}"; do
    out=$tmp/run.json
    rm -f "$out"
    rc=0
    if [[ $r == uws ]]; then
      OUT=$out ./run.sh uws "$scenario" ${EXTRA:-} >"$tmp/run.log" 2>&1 || rc=$?
    else
      BROKER_CMD="$r --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 --log-level warn" \
        OUT=$out ./run.sh broker "$scenario" ${EXTRA:-} >"$tmp/run.log" 2>&1 || rc=$?
    fi
    if [[ $rc -ne 0 || ! -s $out ]]; then
      echo "$r  run $i  failed (run.sh exit $rc):" >&2
      tail -5 "$tmp/run.log" >&2
      continue
    fi
    python3 - "$r" "$i" "$scenario" "$out" <<'PY'
import json, sys
runner, i, scenario, path = sys.argv[1:]
d = json.load(open(path))
if scenario == "D":
    s = d["storm"]
    figures = f"subscribed/s {s['subscribed_per_s']:,.0f}  cpu/conn {s['server_cpu_us_per_conn']} us"
elif scenario == "A":
    figures = f"deliveries/s {d['deliveries_per_s'] / 1e6:.2f}M  cpu {d['server_cpu_pct']:.0f}%"
else:
    figures = f"p50 {d['latency']['p50_us'] / 1000:.2f} ms  cpu {d['server_cpu_pct']:.1f}%"
print(f"{runner}  run {i}  {figures}  gen_saturated {d['gen_saturated']}")
PY
  done
done
