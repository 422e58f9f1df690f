#!/usr/bin/env bash
# Broker CPU per connection in a connect-and-subscribe storm: a release
# broker (one worker), `perf stat -e task-clock` on it while
# tickwire-loadtest's `connections` scenario opens N subscribers (256 in
# flight). BIN=DIR compares another build, as in scripts/idle-rss.sh.
#
#   N=10000 bash scripts/storm-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release}
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
tmp=$(mktemp -d)
ready=$tmp/ready
$bin/tickwire --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --workers 1 --log-level warn --print-ready >"$ready" &
broker=$!
trap 'kill $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [[ -s $ready ]] && break; sleep 0.1; done
ws=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' $ready)
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' $ready)
perf stat -e task-clock -p $broker -o $tmp/pstat.txt & ps=$!
sleep 0.3
$bin/tickwire-loadtest --ws "$ws" --ingest "$ingest" --duration 1 --json -q connections -n ${N:-10000} > $tmp/storm.json
kill -INT $ps; wait $ps 2>/dev/null || true
ms=$(awk '/task-clock/ {print $1}' $tmp/pstat.txt | tr -d ,)
python3 -c "import json;r=json.load(open('$tmp/storm.json'));n=${N:-10000};print(f'cpu ms {float(\"$ms\"):.0f}  us/conn {float(\"$ms\")*1000/n:.1f}  setups/s {r.get(\"setups_per_s\")}')"
