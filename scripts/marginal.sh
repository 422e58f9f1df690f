#!/usr/bin/env bash
# The user-space cost of a delivery without the set-up: the server under
# callgrind's cache simulation over a peerbench scenario for SHORT and
# LONG seconds (`scripts/storm-instructions.sh`, CACHE=1), and the
# difference of the two counts divided by the difference of the
# deliveries. The set-up (1,000 subscribers' handshakes and subscribes)
# is the same in both runs and drops out, so what is left is the fan-out
# itself: instructions and first-level data misses (reads, writes) per
# delivery. SCENARIO=A (the default: saturated, 2 s and 8 s) or B (100
# quotes/s, 5 s and 15 s: one delivery per write, with a turn's fixed
# costs and the per-second ones such as the latency windows). `uws` in
# place of the binary measures the peer. Needs the peerbench copy
# `scripts/peerbench.sh` makes.
#
#   bash scripts/marginal.sh target/release/tickwire new
#   SCENARIO=B bash scripts/marginal.sh uws uws
#   SHORT=2 LONG=8 bash scripts/marginal.sh /tmp/old/tickwire old
set -euo pipefail
bin=${1:?usage: marginal.sh BROKER_BINARY|uws [LABEL]}
label=${2:-$(basename "$bin")}
here=$(cd "$(dirname "$0")" && pwd)
scenario=${SCENARIO:-A}
case $scenario in
  A) short=${SHORT:-2} long=${LONG:-8} ;;
  B) short=${SHORT:-5} long=${LONG:-15} ;;
  *) echo "marginal.sh: SCENARIO is A or B" >&2; exit 2 ;;
esac
run() { # SECONDS LABEL
  SCENARIO=$scenario CACHE=1 A_SECONDS=$1 B_SECONDS=$1 bash "$here/storm-instructions.sh" "$bin" "$2"
}
short=$(run "$short" short)
long=$(run "$long" long)
python3 - "$label" "$short" "$long" <<'PY'
import sys
label, short, long_ = sys.argv[1:]
def fields(line):
    words = line.split()
    return {words[i]: words[i + 1] for i in range(1, len(words) - 1, 2)}
a, b = fields(short), fields(long_)
n = int(b["delivered"]) - int(a["delivered"])
if n <= 0:
    sys.exit(f"marginal.sh: the long run delivered no more than the short one ({a['delivered']} vs {b['delivered']})")
def per(key):
    return (int(b[key]) - int(a[key])) / n
reads, writes = per("D1-read-misses-total"), per("D1-write-misses-total")
print(f"{label} deliveries {a['delivered']} -> {b['delivered']}: per delivery "
      f"{per('instructions'):.0f} instructions, {reads + writes:.2f} D1 misses ({reads:.2f} reads, {writes:.2f} writes)")
PY
