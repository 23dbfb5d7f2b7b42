#!/usr/bin/env bash
# Benchmarks signing and the launch check on the benchmark bundle, side by side
# with baselines that hash the same files:
#   - midcore-sign sign (local key), midcore-verify launch --mode full and --mode lazy
#   - openssl dgst -sha256 over all covered files in one process, and in two
#     parallel processes that each take about half of the bytes
#   - a Node script that recomputes every ASAR entry's SHA-256 through
#     @electron/asar, plus the loose files (launch-node-hash.mjs)
# Times come from hyperfine with a warm page cache (every file is read once
# before timing, and hyperfine does warm-up runs), peak memory from GNU time -v.
#
# Usage: scripts/bench/launch.sh [BUNDLE]
#   BUNDLE defaults to target/bench-bundle, built by make-bench-bundle.sh if missing.
#   The bundle is signed in place (build/ and *.wasm.sig are rewritten).
# Environment:
#   MIDCORE_SIGN, MIDCORE_VERIFY  binaries to measure (default: built with
#                                 cargo build --release --locked)
#   RUNS                          timed runs per command (default 20)
#   RESULTS_DIR                   where keys, lists and results go
#                                 (default target/bench-launch)
#   BENCH_TIMER                   hyperfine (default) or bash, which forces the
#                                 fallback timing loop
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$(dirname "$bench_dir")")"
bundle="$(realpath -m "${1:-$repo_dir/target/bench-bundle}")"
runs="${RUNS:-20}"
results_dir="$(realpath -m "${RESULTS_DIR:-$repo_dir/target/bench-launch}")"

log() { printf 'launch-bench: %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# 1. Tools. hyperfine and GNU time come from Debian packages; without
#    hyperfine the script falls back to timing repeated runs in bash.
install_debian_package() {
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    log "installing Debian package $1"
    apt-get install -y -qq "$1" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$1" >/dev/null 2>&1; } || true
  fi
}
timer="${BENCH_TIMER:-hyperfine}"
if [[ $timer == hyperfine ]]; then
  command -v hyperfine >/dev/null || install_debian_package hyperfine
  command -v hyperfine >/dev/null || timer=bash
fi
[[ -x /usr/bin/time ]] || install_debian_package time
[[ -x /usr/bin/time ]] || fail "GNU time (/usr/bin/time) is missing; install the Debian package 'time'"
command -v openssl >/dev/null || fail "openssl is missing; install the Debian package 'openssl'"
command -v node >/dev/null || fail "node is missing; install Node 20 or later"
[[ -d "$repo_dir/scripts/node_modules/@electron/asar" ]] ||
  (cd "$repo_dir/scripts" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# 2. Binaries.
if [[ -z "${MIDCORE_SIGN:-}" || -z "${MIDCORE_VERIFY:-}" ]]; then
  log "building midcore-sign and midcore-verify (release)"
  (cd "$repo_dir" && cargo build --release --locked -p midcore-signer -p midcore-verifier)
  cargo_target="${CARGO_TARGET_DIR:-$repo_dir/target}"
  MIDCORE_SIGN="${MIDCORE_SIGN:-$cargo_target/release/midcore-sign}"
  MIDCORE_VERIFY="${MIDCORE_VERIFY:-$cargo_target/release/midcore-verify}"
fi
[[ -x "$MIDCORE_SIGN" ]] || fail "midcore-sign not found at $MIDCORE_SIGN"
[[ -x "$MIDCORE_VERIFY" ]] || fail "midcore-verify not found at $MIDCORE_VERIFY"

# 3. Bundle, key pair and one signature, so that the checks have something to verify.
#    Signing writes into the bundle, so the committed example is never used in place.
[[ "$bundle" != "$(realpath -m "$repo_dir/examples/bundle")" ]] ||
  fail "launch.sh signs its bundle in place; copy examples/bundle to a temporary folder and pass that"
[[ -f "$bundle/app.asar" ]] || "$bench_dir/make-bench-bundle.sh" "$bundle"
mkdir -p "$results_dir"
private_key="$results_dir/bench-key.private.pem"
public_key="$results_dir/bench-key.public.pem"
rm -f "$private_key" "$public_key"
"$MIDCORE_SIGN" keygen --private "$private_key" --public "$public_key" >/dev/null

sign_command=("$MIDCORE_SIGN" sign "$bundle" --key "local:$private_key" --product bench --version 1.0.0)
unsign_command="rm -rf '$bundle/build' && find '$bundle' -name '*.wasm.sig' -delete"
full_command=("$MIDCORE_VERIFY" launch "$bundle" --trust "$public_key" --mode full)
lazy_command=("$MIDCORE_VERIFY" launch "$bundle" --trust "$public_key" --mode lazy)

bash -c "$unsign_command"
"${sign_command[@]}" >/dev/null
"${full_command[@]}" >/dev/null || fail "the full launch check rejected the freshly signed bundle $bundle"
"${lazy_command[@]}" >/dev/null || fail "the lazy launch check rejected the freshly signed bundle $bundle"

# 4. Covered files (every regular file but the two manifest files), and the
#    same files split into two lists of about equal bytes, largest file first
#    into the lighter list. Lists are one path a line, so a bundle path must
#    not contain a newline (the benchmark bundle has none).
all_list="$results_dir/files-all.list"
rm -f "$results_dir"/files-*.list
(cd "$bundle" && find . -type f ! -path ./build/integrity.json ! -path ./build/integrity.pub.pem -printf '%s %p\n') |
  sort -k1,1nr -k2 >"$results_dir/files-by-size.txt"
awk -v bundle="$bundle" -v out="$results_dir" '
  { path = bundle "/" substr($2, 3)
    print path > (out "/files-all.list")
    if (bytes1 <= bytes2) { print path > (out "/files-half1.list"); bytes1 += $1 }
    else { print path > (out "/files-half2.list"); bytes2 += $1 } }
  END { printf "%d %d\n", bytes1, bytes2 > (out "/files-halves.txt") }' "$results_dir/files-by-size.txt"
read -r half1_bytes half2_bytes <"$results_dir/files-halves.txt"
covered_files=$(wc -l <"$results_dir/files-by-size.txt")
covered_bytes=$((half1_bytes + half2_bytes))

openssl_one="xargs -d '\\n' -a '$all_list' openssl dgst -sha256 >/dev/null"
openssl_two="xargs -d '\\n' -a '$results_dir/files-half1.list' openssl dgst -sha256 >/dev/null & xargs -d '\\n' -a '$results_dir/files-half2.list' openssl dgst -sha256 >/dev/null; wait"
node_command=(node "$bench_dir/launch-node-hash.mjs" "$bundle")

# 5. Warm the page cache, and note the load: other processes on the machine
#    slow every command down, so the report states the load average.
xargs -d '\n' -a "$all_list" cat >/dev/null
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# 6. Times. Each result is written as hyperfine's JSON export, which the
#    fallback imitates (mean, stddev, min, max in seconds).
quote() { printf '%q ' "$@"; }
fallback_time() {
  local json="$1" name="$2" prepare="$3" command="$4" times=() start end
  for ((i = 0; i < 2; i++)); do bash -c "$prepare"; bash -c "$command" >/dev/null; done
  for ((i = 0; i < runs; i++)); do
    bash -c "$prepare"
    start=$(date +%s%N); bash -c "$command" >/dev/null; end=$(date +%s%N)
    times+=($((end - start)))
  done
  node -e '
    const [name, ...nanos] = process.argv.slice(1); const s = nanos.map((n) => Number(n) / 1e9);
    const mean = s.reduce((a, b) => a + b, 0) / s.length;
    const stddev = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, s.length - 1));
    console.log(JSON.stringify({ results: [{ command: name, mean, stddev, min: Math.min(...s), max: Math.max(...s), times: s }] }));
  ' "$name" "${times[@]}" >"$json"
}
measure() {
  local json="$1" name="$2" prepare="$3" command="$4"
  log "timing: $name"
  if [[ $timer == hyperfine ]]; then
    hyperfine --style basic --shell=none --warmup 2 --runs "$runs" --prepare "$prepare" \
      --command-name "$name" --export-json "$json" "$command" >&2
  else
    fallback_time "$json" "$name" "$prepare" "$command"
  fi
}

# hyperfine runs each command without a shell (so the lazy check's few
# milliseconds carry no shell start-up), and compound commands through bash -c.
measure "$results_dir/sign.json" "midcore-sign sign" "$(quote bash -c "$unsign_command")" "$(quote "${sign_command[@]}")"
measure "$results_dir/full.json" "midcore-verify launch --mode full" "true" "$(quote "${full_command[@]}")"
measure "$results_dir/lazy.json" "midcore-verify launch --mode lazy" "true" "$(quote "${lazy_command[@]}")"
measure "$results_dir/openssl-one.json" "openssl dgst -sha256, 1 process" "true" "$(quote bash -c "$openssl_one")"
measure "$results_dir/openssl-two.json" "openssl dgst -sha256, 2 processes" "true" "$(quote bash -c "$openssl_two")"
measure "$results_dir/node.json" "node launch-node-hash.mjs" "true" "$(quote "${node_command[@]}")"

# 7. Peak resident memory, one run each.
peak_rss_kib() {
  local report
  report=$(/usr/bin/time -v bash -c "$1" 2>&1 >/dev/null) || fail "command failed under GNU time: $1"
  awk -F': ' '/Maximum resident set size/ { print $2 }' <<<"$report"
}
# The two-process openssl baseline is left out, because GNU time would report
# only its largest process.
log "measuring peak memory"
bash -c "$unsign_command"
rss_sign=$(peak_rss_kib "$(quote "${sign_command[@]}")")
rss_full=$(peak_rss_kib "$(quote "${full_command[@]}")")
rss_lazy=$(peak_rss_kib "$(quote "${lazy_command[@]}")")
rss_openssl=$(peak_rss_kib "$openssl_one")
rss_node=$(peak_rss_kib "$(quote "${node_command[@]}")")

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# 8. Report as Markdown, to stdout and results.md.
tool_versions="$(
  printf '%s (commit %s), ' "$("$MIDCORE_VERIFY" --version 2>/dev/null | head -1 || echo 'midcore-verify, version unknown')" \
    "$(git -C "$repo_dir" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf '%s, ' "$(rustc --version 2>/dev/null || echo 'rustc unknown')"
  printf '%s, ' "$(openssl version)"
  printf 'Node %s, @electron/asar %s, ' "$(node --version)" \
    "$(node -p 'require(process.argv[1]).version' "$repo_dir/scripts/node_modules/@electron/asar/package.json")"
  if [[ $timer == hyperfine ]]; then hyperfine --version; else echo 'bash timing loop (no hyperfine)'; fi
)"
machine="$(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"

node "$bench_dir/launch-report.mjs" \
  --results "$results_dir" --date "$(date -u '+%Y-%m-%d %H:%M UTC')" --machine "$machine" --versions "$tool_versions" \
  --load "$load_before before, $load_after after" \
  --bundle "${1:-target/bench-bundle}" --timer "$timer" --bundle-files "$covered_files" --bundle-bytes "$covered_bytes" --halves "$half1_bytes,$half2_bytes" --runs "$runs" \
  --rss "sign=$rss_sign,full=$rss_full,lazy=$rss_lazy,openssl=$rss_openssl,node=$rss_node" |
  tee "$results_dir/results.md"
