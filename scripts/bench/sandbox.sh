#!/usr/bin/env bash
# Sandbox benchmark: verify-and-compile cold, load from the authenticated cache,
# instantiate per task, echo throughput, and the Node baseline (node:wasi in
# worker_threads). Figures go to docs/benchmarks.md by hand, with this command
# and the machine (nproc, the CPU model from /proc/cpuinfo).
#
# Usage: scripts/bench/sandbox.sh   (run scripts/fetch-real-modules.sh first)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "node: $(node --version)"

echo_wasm="$(mktemp --suffix=.wasm)"
trap 'rm -f "$echo_wasm"' EXIT

# The Rust benchmark writes the echo module it signs to $SANDBOX_BENCH_ECHO_OUT,
# so Node runs exactly the same bytes.
SANDBOX_BENCH_ECHO_OUT="$echo_wasm" \
  cargo test --release --locked -p midcore-verifier --features sandbox --test sandbox_bench \
    -- --ignored --nocapture 2>&1 | grep '^BENCH'

node scripts/bench/sandbox-node.mjs "$echo_wasm" 20000 "$(nproc)"
