#!/usr/bin/env bash
# Signs and verifies a copy of the committed example bundle (examples/bundle/)
# with a throwaway key pair made on the spot, then shows that a tampered copy
# is rejected. Everything happens in a temporary folder that is removed at the
# end; the repository is not changed.
#
# Needs only Rust (cargo). The first run builds the two binaries in release
# mode, which fetches crates unless they are already in cargo's cache.
#
# Usage: scripts/demo.sh
set -euo pipefail

repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$repo_dir/target}"

echo "== Building midcore-sign and midcore-verify (cargo build --release --locked)"
(cd "$repo_dir" && cargo build --release --locked --quiet -p midcore-signer -p midcore-verifier)
sign="$target_dir/release/midcore-sign"
verify="$target_dir/release/midcore-verify"

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/midcore-demo.XXXXXX")"
trap 'rm -rf "$work_dir"' EXIT
cd "$work_dir"

# Prints a command (with the binaries' folder left out), then runs it.
run() {
  local shown=("${@}")
  shown[0]="$(basename "$1")"
  echo "\$ ${shown[*]}"
  "$@"
}

echo
echo "== Working in $work_dir (removed on exit)"
cp -R "$repo_dir/examples/bundle" bundle
echo "Copied examples/bundle to ./bundle: $(find bundle -type f | wc -l) files."

echo
echo "== 1. Make a throwaway development key pair (never use it for a release)"
run "$sign" keygen --private dev-key.pem --public dev-key.pub.pem

echo
echo "== 2. Sign the bundle"
run "$sign" sign bundle --key local:dev-key.pem --product example --version 1.0.0
echo "Files the signer wrote:"
find bundle -path bundle/build -prune -o -name '*.wasm.sig' -print | sort | sed 's/^/  /'
find bundle/build -type f | sort | sed 's/^/  /'

echo
echo "== 3. Run the launch check, trusting only the public key from step 1"
run "$verify" launch bundle --trust dev-key.pub.pem
echo "Exit status 0: the bundle is intact and signed by the trusted key."

echo
echo "== 4. Tamper with a copy: change one byte of the unpacked native addon"
cp -R bundle tampered
addon="app.asar.unpacked/node_modules/bufferutil/prebuilds/linux-x64/bufferutil.node"
# Overwrite the byte at offset 100 with its bitwise complement, keeping the size.
original=$(od -An -tu1 -j100 -N1 "tampered/$addon" | tr -d ' ')
printf "$(printf '\\%03o' $((255 - original)))" |
  dd of="tampered/$addon" bs=1 seek=100 conv=notrunc status=none
echo "Changed byte 100 of tampered/$addon."

echo "\$ midcore-verify launch tampered --trust dev-key.pub.pem"
set +e
"$verify" launch tampered --trust dev-key.pub.pem >output.txt 2>&1
status=$?
set -e
sed 's/^/  /' output.txt
if [[ $status -ne 1 ]]; then
  echo "demo failed: the launch check exited with status $status on the tampered copy; expected 1" >&2
  exit 1
fi
if ! grep -q "bufferutil.node" output.txt; then
  echo "demo failed: the launch check rejected the tampered copy but did not name $addon" >&2
  exit 1
fi
echo "Exit status 1: the tampered copy is rejected, and the message names the changed file."
