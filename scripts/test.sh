#!/usr/bin/env bash
# The whole test suite: unit, property and end-to-end tests of every crate.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-targets "$@"
