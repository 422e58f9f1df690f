#!/usr/bin/env bash
# Side by side with uWebSockets: the matrix docs/performance.md opens with,
# in one command. Copies ../shared/peerbench out (it is read-only), builds
# its generator, the uWebSockets peer and tickwire (release), then runs
# bench.sh with the broker pinned to core 0 with one worker. The TLS peer
# (uSockets on OpenSSL, needs libssl-dev) is built beside the plain one.
#
#   scripts/peerbench.sh UWS_GIT_DIR USOCKETS_GIT_DIR   # first time: builds the uWS peer
#   scripts/peerbench.sh                                # again: reuses the copy and the peer
#
# The two directories are bare git directories (or extracted trees) of
# github.com/uNetworking/uWebSockets and uNetworking/uSockets; the commits
# used are the ones peerbench's README names. Environment (optional):
#   PEERBENCH_SRC=../shared/peerbench   where peerbench is laid out
#   PEERBENCH_DIR=/tmp/tickwire-peerbench/peerbench   the working copy
#   SCENARIOS="A B C" REPS=3 RATE=500   passed on to bench.sh (B's --rate)
#   TLS=1                               the same over wss (A and D are the
#                                       scenarios the harness runs over TLS)
# Prints the summary's path; ratios count only inside one summary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
src=${PEERBENCH_SRC:-$repo/../shared/peerbench}
dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
uws_rev=66dcff3dd48f0c19dd1703426365d062039321d0
usockets_rev=86097c490263ab662d62e8e7b541390bdec7d149

if [[ ! -d $dir ]]; then
  [[ -d $src ]] || { echo "peerbench.sh: no peerbench at $src" >&2; exit 2; }
  mkdir -p "$(dirname "$dir")"
  cp -r "$src" "$dir"
  chmod -R u+w "$dir"
fi
cd "$dir"
# run.sh looks for the peers two folders up (its PEERS default).
peers=${PEERS:-$dir/../../peers}/uws-pubsub
build_peer() {
  [[ $# -eq 2 ]] || { echo "usage: peerbench.sh UWS_GIT_DIR USOCKETS_GIT_DIR (the uWS peer is not built yet)" >&2; exit 2; }
  UWS_REV=$uws_rev USOCKETS_REV=$usockets_rev PEER_DIR=$peers uws/build.sh "$1" "$2"
}
[[ -x $peers/uws_pubsub ]] || build_peer "$@"
[[ -x $peers/uws_pubsub_ssl ]] || WITH_SSL=1 build_peer "$@"
(cd loadgen && cargo build --release --quiet)
(cd "$repo" && cargo build --release --quiet -p tickwire-broker)

broker="$repo/target/release/tickwire --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 --log-level warn"
TLS=${TLS:-0} BROKER_CMD="$broker" SERVERS="broker uws" SCENARIOS="${SCENARIOS:-A B C}" REPS="${REPS:-3}" \
  PEERBENCH_ARGS="--rate ${RATE:-500}" ./bench.sh
latest=$(ls -td results/2* | head -1)
echo "summary: $dir/$latest/summary.md"
