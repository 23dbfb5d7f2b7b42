#!/usr/bin/env bash
# Builds the benchmark bundle (about 356 MiB, never committed) from the npm
# packages pinned in scripts/package-lock.json. Needs Node 20 or later and the
# npm registry, and about 1 GiB of free disk during the build.
#
# Usage: scripts/bench/make-bench-bundle.sh [--packer 4.2] [OUTPUT_DIR]
#   --packer 4.2  pack with @electron/asar 4.2.1, whose archives never share
#                 contents between entries (4.3.x, the default, does)
#   OUTPUT_DIR    defaults to target/bench-bundle (git-ignored)
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scripts_dir="$(dirname "$bench_dir")"
repo_dir="$(dirname "$scripts_dir")"
packer_args=()
if [[ "${1:-}" == --packer ]]; then
  packer_args=(--packer "${2:?--packer needs a version: 4.2}")
  shift 2
fi
output_dir="${1:-$repo_dir/target/bench-bundle}"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if (( node_major < 20 )); then
  echo "make-bench-bundle: Node 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Same install step as make-example-bundle.sh: exactly the locked packages,
# without install scripts.
if ! cmp -s "$scripts_dir/package-lock.json" "$scripts_dir/node_modules/.package-lock.json.midcore" 2>/dev/null; then
  (cd "$scripts_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$scripts_dir/package-lock.json" "$scripts_dir/node_modules/.package-lock.json.midcore"
fi

start_ms=$(date +%s%3N)
node "$bench_dir/make-bench-bundle.mjs" "${packer_args[@]}" "$output_dir"
end_ms=$(date +%s%3N)
elapsed_ms=$((end_ms - start_ms))
printf 'built in %d.%03d s\n' $((elapsed_ms / 1000)) $((elapsed_ms % 1000))
