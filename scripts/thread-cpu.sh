#!/usr/bin/env bash
# CPU per thread of a running process over a few seconds, from
# /proc/PID/task/*/stat (utime + stime, clock ticks): which of a broker's
# threads (worker-N, router, ingest, ...) the time goes to.
#   scripts/thread-cpu.sh PID [SECONDS]   → "name percent-of-one-core" lines
set -euo pipefail
pid=${1:?usage: thread-cpu.sh PID [SECONDS]}
secs=${2:-5}
hz=$(getconf CLK_TCK)
sample() {
  for t in /proc/"$pid"/task/*; do
    [[ -r $t/stat ]] || continue
    # Fields after the ")" closing the name: utime and stime are 14 and 15.
    printf '%s %s %s\n' "${t##*/}" "$(tr ' ' '_' < "$t/comm")" \
      "$(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')"
  done
}
before=$(sample)
sleep "$secs"
after=$(sample)
join <(sort <<<"$before") <(sort <<<"$after") |
  awk -v hz="$hz" -v s="$secs" '{printf "%-16s %6.1f%%\n", $2, ($5 - $3) * 100 / hz / s}'
