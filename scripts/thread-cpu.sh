#!/usr/bin/env bash
# CPU per thread of a running process over a few seconds, from
# /proc/PID/task/*/stat (utime + stime, clock ticks): which of a broker's
# threads (worker-N, router, ...) the time goes to.
#   scripts/thread-cpu.sh PID [SECONDS]   → "name percent-of-one-core" lines
set -euo pipefail
pid=${1:?usage: thread-cpu.sh PID [SECONDS]}
[[ -d /proc/$pid/task ]] || { echo "thread-cpu.sh: no process $pid" >&2; exit 2; }
secs=${2:-5}
hz=$(getconf CLK_TCK)
sample() {
  for t in /proc/"$pid"/task/*; do
    # A thread may end between the listing and the reads: skip it.
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    name=$(tr ' ' '_' < "$t/comm" 2>/dev/null) || continue
    # Fields after the ")" closing the name: utime and stime are 14 and 15.
    printf '%s %s %s\n' "${t##*/}" "$name" "$(sed 's/.*) //' <<<"$stat" | awk '{print $12 + $13}')"
  done
}
before=$(sample)
sleep "$secs"
after=$(sample)
LC_ALL=C join <(LC_ALL=C sort -k1,1 <<<"$before") <(LC_ALL=C sort -k1,1 <<<"$after") |
  awk -v hz="$hz" -v s="$secs" '{printf "%-16s %6.1f%%\n", $2, ($5 - $3) * 100 / hz / s}'
