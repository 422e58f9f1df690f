# Sourced by the profiling scripts: starts tickwire (one worker) or the
# uWebSockets peer pinned to core 0, in the peerbench copy, and stops it.
#
#   source scripts/lib/pinned-server.sh
#   start_pinned_server broker|uws BROKER_BINARY   # sets sp, port, pub, tmp
#   ...run the generator on core 1 against $port / $pub...
#   stop_pinned_server                             # before printing anything
#
# The exit trap stops the server if the script ends early and removes
# $tmp; once stopped, its PID is forgotten so that the trap cannot signal
# a process that took the number since.

start_pinned_server() {
  local server=$1 bin=$2
  [[ $server != broker ]] || bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  local dir=${PEERBENCH_DIR:-/tmp/tickwire-peerbench/peerbench}
  local peers=${PEERS:-$dir/../../peers}/uws-pubsub
  cd "$dir"
  tmp=$(mktemp -d)
  case $server in
    broker)
      taskset -c 0 "$bin" --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 \
        --log-level warn >"$tmp/server.log" 2>&1 &
      port=8080 pub=7001 ;;
    uws)
      taskset -c 0 "$peers/uws_pubsub" 9001 127.0.0.1 >"$tmp/server.log" 2>&1 &
      port=9001 pub=9001 ;;
  esac
  sp=$!
  trap '[[ -z $sp ]] || kill $sp 2>/dev/null || true; rm -rf "$tmp"' EXIT
  for _ in $(seq 150); do ss -ltn | grep -q ":$port " && break; sleep 0.2; done
}

stop_pinned_server() {
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  sp=
}
