#!/usr/bin/env bash
# Builds the unsigned example bundle examples/bundle/ from the npm packages
# pinned in scripts/package-lock.json (needs Node 20 or later and the npm
# registry). Same package versions give the same bytes on every run.
#
# Usage: scripts/make-example-bundle.sh [--check] [OUTPUT_DIR]
#   --check  rebuild in a temporary folder and compare with OUTPUT_DIR
#            (default examples/bundle) instead of replacing it
set -euo pipefail

scripts_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if (( node_major < 20 )); then
  echo "make-example-bundle: Node 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Install exactly the locked packages. Install scripts are skipped because the
# bundles only copy package files; bufferutil's script would only probe for its
# prebuilt addon.
if ! cmp -s "$scripts_dir/package-lock.json" "$scripts_dir/node_modules/.package-lock.json.midcore" 2>/dev/null; then
  (cd "$scripts_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$scripts_dir/package-lock.json" "$scripts_dir/node_modules/.package-lock.json.midcore"
fi

# node:wasi prints an ExperimentalWarning on every use in Node 20.
exec node --disable-warning=ExperimentalWarning "$scripts_dir/make-example-bundle.mjs" "$@"
