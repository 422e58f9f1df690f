#!/usr/bin/env bash
# User-space instructions of the broker over a paced fan-out: peerbench
# scenario B at 100 quotes/s for 5 s (1,000 subscribers, ~100 per quote:
# about 70,000 deliveries with the warm-up) under callgrind, per delivery.
# Wall clock on this VM moves ±15% between runs; the count repeats to a
# fraction of a percent, so two builds compare on the delivery path.
#
#   bash scripts/fanout-instructions.sh target/release/tickwire new
SCENARIO=B exec bash "$(dirname "$0")/storm-instructions.sh" "$@"
