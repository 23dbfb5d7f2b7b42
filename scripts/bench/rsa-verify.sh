#!/usr/bin/env bash
# Compares RSA-PSS-SHA256 verification rates: aws-lc-rs, ring, the rsa crate, and `openssl speed`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/../../target/rsa-verify-bench}
cargo run --release --quiet --manifest-path "$here/rsa-verify/Cargo.toml"
echo "openssl speed (one core):"
openssl speed -seconds 2 rsa2048 rsa3072 2>/dev/null | grep -E '^rsa +(2048|3072)'
