#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/) for a few seconds from its seed
# corpus, when a nightly toolchain is installed; installs cargo-fuzz if
# missing. A crash fails the run. Longer runs while developing:
#   cd fuzz && cargo +nightly fuzz run ws_frames corpus/ws_frames -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# The targets must compile whatever the toolchain: a stable check fails on
# our own breakage (once, a broker feature only the main workspace enabled),
# which the skips below for a nightly's tooling problems would hide.
cargo check --bins --quiet
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz-smoke: no nightly toolchain; skipped"
  exit 0
fi
# Tooling problems (no cargo-fuzz from the registry, a nightly that cannot
# build the targets) are reported and skipped; a crash found is a failure.
if ! command -v cargo-fuzz >/dev/null && ! cargo install cargo-fuzz --locked; then
  echo "fuzz-smoke: WARNING: cannot install cargo-fuzz; skipped" >&2
  exit 0
fi
# A smoke run is seconds long: an unoptimised (--dev, debug assertions on)
# build compiles in half the time of the release one and finds the same
# shallow crashes. FUZZ_RELEASE=1 builds optimised, as longer runs should.
profile=(--dev)
[[ "${FUZZ_RELEASE:-0}" == 1 ]] && profile=()
if ! cargo +nightly fuzz build "${profile[@]}"; then
  echo "fuzz-smoke: WARNING: the fuzz targets do not build on this nightly; skipped" >&2
  exit 0
fi
secs="${FUZZ_SECONDS:-5}"
# Work on a copy of the corpora: a smoke run must not change the repo.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for target in ws_frames http_head ingest_frame control_json jwt_auth cluster_message sse_query deflate server_message tls_records; do
  mkdir -p "$work/$target"
  cp -r "corpus/$target/." "$work/$target/"
  echo "== fuzz $target (${secs}s)"
  cargo +nightly fuzz run "${profile[@]}" "$target" "$work/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -max_len=70000 2>&1 | tail -n 3
done
echo "fuzz smoke: ok"
