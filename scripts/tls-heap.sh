#!/usr/bin/env bash
# Heap in use against RSS for idle wss subscribers: a release broker (one
# worker, TLS listener, a certificate made here), 2,000 idle subscribers
# from tickwire-loadtest, then — while they are connected — VmRSS, a
# `malloc_trim(0)` and glibc's `malloc_stats` (per-arena "in use" and
# "system" bytes, printed on the broker's stderr) through gdb. Shows how
# much of an idle TLS connection's RSS is held memory and how much the
# allocator's free space between connections. Needs gdb and openssl.
#
#   bash scripts/tls-heap.sh [BINARY_DIR]     # default target/release
set -euo pipefail
bin=${1:-target/release}
cd "$(dirname "$0")/.."
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
tmp=$(mktemp -d)
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -days 1 -subj /CN=ca -keyout "$tmp/ca.key" -out "$tmp/ca.pem" 2>/dev/null
openssl req "${ec[@]}" -subj /CN=localhost -keyout "$tmp/key.pem" -out "$tmp/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tmp/leaf.ext"
openssl x509 -req -in "$tmp/leaf.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial -days 1 -extfile "$tmp/leaf.ext" -out "$tmp/cert.pem" 2>/dev/null
"$bin/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --tls-addr 127.0.0.1:0 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --workers 1 --log-level warn --print-ready >"$tmp/ready" 2>"$tmp/err" &
b=$!
for _ in $(seq 100); do [[ -s $tmp/ready ]] && break; sleep 0.1; done
wss=$(sed -n 's/.*"wss":"\([^"]*\)".*/\1/p' $tmp/ready)
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' $tmp/ready)
rss() { awk '/VmRSS/{print $2}' /proc/$b/status; }
r0=$(rss)
"$bin/tickwire-loadtest" --ws "$wss" --tls --ca-file "$tmp/ca.pem" --ingest "$ingest" --duration 12 --json -q connections -n 2000 --broker-pid $b >/dev/null &
l=$!
sleep 9
r1=$(rss)
gdb -p $b -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1
r2=$(rss)
gdb -p $b -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1
wait $l
echo "rss kB: before $r0, with 2000: $r1 ($(( (r1-r0)*1024/2000 )) B/conn), after trim $r2 ($(( (r2-r0)*1024/2000 )) B/conn)"
grep -E "Arena|in use|system" $tmp/err | head -20
kill $b; wait $b 2>/dev/null; rm -rf $tmp
