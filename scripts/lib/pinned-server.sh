# Sourced by the profiling scripts: starts tickwire (one worker) or the
# uWebSockets peer pinned to core 0, in the peerbench copy, and stops it.
#
#   source scripts/lib/pinned-server.sh
#   start_pinned_server broker|uws BROKER_BINARY   # sets sp, port, pub, tmp
#   ...run the generator on core 1 against $port / $pub...
#   stop_pinned_server                             # before printing anything
#
# TLS=1: subscribers over wss (tickwire's TLS port, uWS's OpenSSL build),
# with the certificate in TLS_DIR (default /tmp/tlsdir, made by the
# peerbench copy's tls-cert.sh when missing); `gen_tls` then holds the
# generator's flags for it (empty otherwise).
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
  local tls_dir=${TLS_DIR:-/tmp/tlsdir} broker_tls=() uws_bin=$peers/uws_pubsub uws_tls=()
  gen_tls=()
  if [[ ${TLS:-0} == 1 ]]; then
    [[ -f $tls_dir/cert.pem ]] || ./tls-cert.sh "$tls_dir" >/dev/null
    broker_tls=(--tls-cert "$tls_dir/cert.pem" --tls-key "$tls_dir/key.pem" --tls-addr 127.0.0.1:8443)
    uws_bin=$peers/uws_pubsub_ssl uws_tls=("$tls_dir/cert.pem" "$tls_dir/key.pem")
    gen_tls=(--tls --ca-file "$tls_dir/cert.pem" --server-name localhost)
  fi
  case $server in
    broker)
      taskset -c 0 "$bin" --workers 1 --ws-addr 127.0.0.1:8080 --ingest-addr 127.0.0.1:7001 \
        "${broker_tls[@]}" --log-level warn >"$tmp/server.log" 2>&1 &
      port=8080 pub=7001
      [[ ${TLS:-0} != 1 ]] || port=8443 ;;
    uws)
      taskset -c 0 "$uws_bin" 9001 127.0.0.1 "${uws_tls[@]}" >"$tmp/server.log" 2>&1 &
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
