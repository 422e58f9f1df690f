#!/usr/bin/env bash
# The whole test suite: unit, property and end-to-end tests of every crate,
# then the browser tests of the dashboard (browser-tests/, node --test:
# Playwright driving Debian's chromium, and the decoder golden test), the
# clients' tests and the cluster chaos test (chaos-tests/).
# This is the README's test command; .ci/run calls it. On a fresh machine it
# installs what the tests need (chromium, nginx, nats-server,
# browser-tests/node_modules, the Python client's virtualenv, promtool).
set -euo pipefail
cd "$(dirname "$0")/.."

# A fresh machine has none of these: install them (Debian's chromium and
# nats-server, the pinned playwright-core from the npm registry).
chromium="${CHROMIUM:-/usr/bin/chromium}"
need_apt=()
[[ ! -x "$chromium" && "$chromium" == /usr/bin/chromium ]] && need_apt+=(chromium)
# The https browser test makes its certificate with the openssl CLI.
command -v openssl >/dev/null || need_apt+=(openssl)
# The proxy browser test (browser-tests/proxy.test.js) starts Debian's nginx
# itself, unprivileged on loopback, in front of the broker (the SSE fallback).
nginx="${NGINX:-/usr/sbin/nginx}"
[[ ! -x "$nginx" && "$nginx" == /usr/sbin/nginx ]] && need_apt+=(nginx)
# The cluster tests (crates/broker/tests/e2e/cluster.rs) and the chaos test
# (chaos-tests/) run a real nats-server -js.
[[ -n "${NATS_SERVER:-}" ]] || command -v nats-server >/dev/null || need_apt+=(nats-server)
# deploy/check.sh checks the alert rules with promtool (Debian's prometheus).
command -v promtool >/dev/null || need_apt+=(prometheus)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]} (apt-get)"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${need_apt[@]}"
fi

cargo test --workspace --all-targets "$@"

echo "== browser tests (browser-tests/)"
# The tests start target/debug/tickwire (or $TICKWIRE_BIN).
if [[ -z "${TICKWIRE_BIN:-}" ]]; then
  cargo build -p tickwire-broker
  bin="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/tickwire"
  export TICKWIRE_BIN="$bin"
fi
if [[ ! -d browser-tests/node_modules/playwright-core ]] && command -v npm >/dev/null; then
  echo "== installing browser-tests/node_modules (npm ci)"
  (cd browser-tests && npm ci --no-audit --no-fund)
fi
missing=()
if ! command -v node >/dev/null || (($(node -p 'process.versions.node.split(".")[0]') < 20)); then
  missing+=("Node.js >= 20 with npm (playwright-core needs it; Debian 12's nodejs is 18: use nodejs.org or NodeSource)")
fi
[[ -x "$chromium" ]] || missing+=("chromium at $chromium: apt-get install -y chromium (or set CHROMIUM)")
command -v openssl >/dev/null || missing+=("openssl (the https test's certificate): apt-get install -y openssl")
[[ -x "$nginx" ]] || missing+=("nginx at $nginx (the proxy test): apt-get install -y nginx (or set NGINX)")
[[ -d browser-tests/node_modules/playwright-core ]] ||
  missing+=("browser-tests/node_modules: (cd browser-tests && npm ci)")
if ((${#missing[@]})); then
  echo "scripts/test.sh: cannot run the browser tests, missing:" >&2
  printf '  - %s\n' "${missing[@]}" >&2
  echo "(this script installs chromium and node_modules itself when it can.)" >&2
  exit 1
fi
(cd browser-tests && node --test)

echo "== JavaScript client tests (clients/js/test.sh: node --test against the real broker)"
bash clients/js/test.sh

echo "== Python client tests (clients/python/test.sh: pytest against the real broker)"
bash clients/python/test.sh -q

echo "== chaos test (chaos-tests/test.sh: 3 brokers + nats-server, 50 JS and Python subscribers, SIGKILL of a broker, NATS restart)"
bash chaos-tests/test.sh

echo "== operations kit (deploy/check.sh: promtool, the Grafana board against a live broker's metrics)"
bash deploy/check.sh
