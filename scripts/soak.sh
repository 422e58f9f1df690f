#!/usr/bin/env bash
# The long soak of docs/performance.md ("A 30-minute soak", and the one
# over wss): a release broker on ephemeral loopback ports with [auth]
# (HS256) and small slow-consumer limits, and `tickwire-loadtest soak`
# against it with its default churn, sampling the broker's RSS, fds and
# queues. TLS=1: every subscriber connection and /metrics scrape over wss
# (a certificate made here with openssl), the checked subscribers updating
# their TLS keys every 10 s. Prints the verdict and the main counts; the
# JSON report, the samples and the broker's log go to OUT (default: a
# temporary directory, removed).
#
#   DURATION=1800 bash scripts/soak.sh
#   TLS=1 DURATION=1800 OUT=/tmp/soak bash scripts/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tickwire-broker -p tickwire-loadtest
tmp=$(mktemp -d)
out=${OUT:-$tmp}
mkdir -p "$out"
broker=
trap '[[ -z $broker ]] || kill $broker 2>/dev/null || true; rm -rf "$tmp"' EXIT
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$tmp/jwt.secret"
cat >"$tmp/soak.toml" <<TOML
[subscriber]
stall_timeout_ms = 5000
outbound_budget_bytes = 32768
socket_send_buffer_bytes = 16384
[auth]
jwt_hs256_secret_file = "$tmp/jwt.secret"
TOML
tls_args=()
if [[ ${TLS:-0} == 1 ]]; then
  source scripts/lib/test-cert.sh
  make_test_cert "$tmp"
  tls_args=(--tls-addr 127.0.0.1:0 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
fi
target/release/tickwire --config "$tmp/soak.toml" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 \
  "${tls_args[@]}" --log-level warn --print-ready >"$tmp/ready" 2>"$out/broker.log" &
broker=$!
for _ in $(seq 100); do [[ -s $tmp/ready ]] && break; sleep 0.1; done
[[ -s $tmp/ready ]] || { echo "soak.sh: the broker did not start:" >&2; cat "$out/broker.log" >&2; exit 1; }
ws=$(sed -n 's/.*"ws":"\([^"]*\)".*/\1/p' "$tmp/ready")
ingest=$(sed -n 's/.*"ingest":"\([^"]*\)".*/\1/p' "$tmp/ready")
load_args=()
if [[ ${TLS:-0} == 1 ]]; then
  ws=$(sed -n 's/.*"wss":"\([^"]*\)".*/\1/p' "$tmp/ready")
  load_args=(--tls --ca-file "$tmp/ca.pem")
fi
rc=0
target/release/tickwire-loadtest --ws "$ws" "${load_args[@]}" --ingest "$ingest" \
  --duration "${DURATION:-1800}" --quiet soak --broker-pid "$broker" \
  --hs256-secret-file "$tmp/jwt.secret" --samples-csv "$out/samples.csv" --json >"$out/soak.json" || rc=$?
python3 -c '
import json, sys
r = json.load(open(sys.argv[1])); s = r["soak"]
print("passed" if s["passed"] else "FAILED", s["failures"])
print("checked", r["deliveries"], "of", r["expected_deliveries"], "seq", r["seq"])
for k in ("broker_rss_kib", "broker_fds"): print(k, s[k])
print("churn", json.dumps(s["churn"]))' "$out/soak.json"
exit $rc
