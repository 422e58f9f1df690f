#!/usr/bin/env bash
# Short tickwire-loadtest runs against the real broker binary, on ephemeral
# loopback ports: a fanout run proves the whole measured path works (ingest
# → router → workers → subscribers → latency report); a 20-second soak
# (churn around checked subscribers, the broker's RSS, fds and queues
# sampled) proves the soak mode and the broker under churn. They check
# correctness only; performance figures live in docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p tickwire-broker -p tickwire-loadtest
target="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
tmp="$(mktemp -d)"
pids=()
stop_brokers() {
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap stop_brokers EXIT

# start_broker NAME [BROKER FLAGS...]: a broker on ephemeral loopback ports;
# sets ws, ingest and pid. --print-ready: one JSON line,
# {"ready":true,"ws":…,"ingest":…,…}, once every listener is bound
# (docs/operations.md).
start_broker() {
  local log="$tmp/$1.log"
  shift
  "$target/debug/tickwire" --ws-addr 127.0.0.1:0 --ingest-addr 127.0.0.1:0 --workers 2 \
    --print-ready "$@" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  local ready=""
  for _ in $(seq 1 300); do
    ready="$(grep -m1 '^{"ready":true.*}$' "$log" || true)"
    [[ -n "$ready" ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n "$ready" ]] || { echo "broker did not start:"; cat "$log"; exit 1; }
  ws="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ws"])' "$ready")"
  ingest="$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["ingest"])' "$ready")"
}

start_broker fanout
echo "== tickwire-loadtest fanout against $ws / $ingest"
"$target/debug/tickwire-loadtest" fanout --ws "$ws" --ingest "$ingest" \
  -s 20 -t 10 -k 3 -p 1 --rate 2000 --duration 3 --quiet --json >"$tmp/fanout.json"
python3 - "$tmp/fanout.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["latency_us"]
print(f"deliveries {r['deliveries']} of {r['expected_deliveries']}, p50 {lat['p50']} us, p99 {lat['p99']} us, "
      f"gaps {r['seq_gaps']}, errors {r['errors']['total']}")
assert r["deliveries"] > 0, "no deliveries"
assert r["deliveries"] == r["expected_deliveries"], "deliveries missing"
assert r["errors"]["total"] == 0, "errors"
assert r["seq_gaps"] == 0, "seq gaps"
print("loadtest smoke: ok")
PY

# The soak's broker closes stalled readers within the run (2 s stall
# timeout, small budgets) and wants tokens ([auth], HS256): the soak mints
# and refreshes them.
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$tmp/jwt.secret"
cat >"$tmp/soak.toml" <<TOML
[subscriber]
stall_timeout_ms = 2000
outbound_budget_bytes = 32768
socket_send_buffer_bytes = 16384
[auth]
jwt_hs256_secret_file = "$tmp/jwt.secret"
TOML
start_broker soak --config "$tmp/soak.toml"
echo "== tickwire-loadtest soak (20 s) against $ws / $ingest, broker pid $pid"
soak_exit=0
"$target/debug/tickwire-loadtest" soak --ws "$ws" --ingest "$ingest" --duration 20 --quiet --json \
  --broker-pid "$pid" --hs256-secret-file "$tmp/jwt.secret" --stall-hold 5 >"$tmp/soak.json" \
  || soak_exit=$?
python3 - "$tmp/soak.json" "$soak_exit" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, c = r["soak"], r["soak"]["churn"]
rss, fds = s["broker_rss_kib"], s["broker_fds"]
print(f"checked: {r['deliveries']} of {r['expected_deliveries']} quotes, gaps {r['seq_gaps']}, errors {r['errors']['total']}")
print(f"churn: {c['connections']['opened']} connections, {c['subscriptions']['subscribes']} subscribes, "
      f"{c['producers']['reconnects']} producer reconnects, resumes {c['resumes']['recovered']} of "
      f"{c['resumes']['attempted']} recovered, slow closes {c['slow_readers']['closed_slow_consumer']} + "
      f"{c['stalled_readers']['closed_by_broker']}, token refreshes {c['tokens']['refreshes']}, problems {c['errors']['total']}")
print(f"broker: RSS {rss['start']} -> {rss['end']} KiB (slope {rss['slope_per_min']}/min), "
      f"fds {fds['start']} -> {fds['end']} (slope {fds['slope_per_min']}/min), {s['samples']} samples")
assert s["passed"], s["failures"]
assert sys.argv[2] == "0", f"exit {sys.argv[2]}"
assert r["seq_gaps"] == 0 and r["deliveries"] == r["expected_deliveries"], "checked subscribers"
assert c["resumes"]["recovered"] > 0 and c["resumes"]["unexplained"] == 0, "resumes"
for what, n in [("connections", c["connections"]["opened"]), ("subscribes", c["subscriptions"]["subscribes"]),
                ("producer reconnects", c["producers"]["reconnects"]), ("stalls", c["stalled_readers"]["stalls"]),
                ("token refreshes", c["tokens"]["refreshes"])]:
    assert n > 0, f"no {what}"
assert s["samples"] > 0 and rss["slope_per_min"] is not None and fds["max"] > 0, "samples"
print("soak smoke: ok")
PY
