#!/usr/bin/env bash
# A's user-space cost per delivery without the set-up: the broker under
# callgrind's cache simulation over A for SHORT and LONG seconds
# (`scripts/storm-instructions.sh`, SCENARIO=A CACHE=1), and the
# difference of the two counts divided by the difference of the
# deliveries. The set-up (1,000 subscribers' handshakes and subscribes)
# is the same in both runs and drops out, so what is left is the fan-out
# itself: instructions and first-level data misses (reads, writes) per
# delivery. Needs the peerbench copy `scripts/peerbench.sh` makes.
#
#   bash scripts/a-marginal.sh target/release/tickwire new
#   SHORT=2 LONG=8 bash scripts/a-marginal.sh /tmp/old/tickwire old
set -euo pipefail
bin=${1:?usage: a-marginal.sh BROKER_BINARY [LABEL]}
label=${2:-$(basename "$bin")}
here=$(cd "$(dirname "$0")" && pwd)
short=$(SCENARIO=A CACHE=1 A_SECONDS=${SHORT:-2} bash "$here/storm-instructions.sh" "$bin" short)
long=$(SCENARIO=A CACHE=1 A_SECONDS=${LONG:-8} bash "$here/storm-instructions.sh" "$bin" long)
python3 - "$label" "$short" "$long" <<'PY'
import sys
label, short, long_ = sys.argv[1:]
def fields(line):
    words = line.split()
    return {words[i]: words[i + 1] for i in range(1, len(words) - 1, 2)}
a, b = fields(short), fields(long_)
n = int(b["delivered"]) - int(a["delivered"])
if n <= 0:
    sys.exit(f"a-marginal.sh: the long run delivered no more than the short one ({a['delivered']} vs {b['delivered']})")
def per(key):
    return (int(b[key]) - int(a[key])) / n
reads, writes = per("D1-read-misses-total"), per("D1-write-misses-total")
print(f"{label} deliveries {a['delivered']} -> {b['delivered']}: per delivery "
      f"{per('instructions'):.0f} instructions, {reads + writes:.2f} D1 misses ({reads:.2f} reads, {writes:.2f} writes)")
PY
