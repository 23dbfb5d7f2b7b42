#!/usr/bin/env bash
# Benchmark: sign a bundle with 100 WASM modules through Key Vault on the
# loopback emulator with 50 ms of added latency per request, with default
# settings and fully sequential (MIDCORE_KV_CONCURRENCY=1), and report the
# wall time and the throttling responses (429) the emulator sent.
#
# Usage: scripts/bench/keyvault-sign.sh [RUNS]
# Environment: PROFILE=release|debug (default release), MODULES (default 100),
# LATENCY_MS (default 50), CARGO_TARGET_DIR (default ./target).
# Builds nothing: run first
#   cargo build --release -p midcore-signer --features azure --bins
#   cargo build --release -p midcore-e2e --bins
set -euo pipefail

runs="${1:-5}"
profile="${PROFILE:-release}"
modules="${MODULES:-100}"
latency="${LATENCY_MS:-50}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${CARGO_TARGET_DIR:-$repo/target}/$profile"
for tool in midcore-sign midcore-azure-emulator; do
  [[ -x "$bin/$tool" ]] || { echo "missing $bin/$tool; see the build commands at the top of $0" >&2; exit 1; }
done

work="$(mktemp -d)"
emulator_pid=""
cleanup() {
  if [[ -n "$emulator_pid" ]]; then kill "$emulator_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The emulator, with one 3072-bit RSA-HSM key.
"$bin/midcore-azure-emulator" --listen 127.0.0.1:0 --state-dir "$work/state" --key bench:3072 > "$work/emulator.json" &
emulator_pid=$!
for _ in $(seq 50); do [[ -s "$work/emulator.json" ]] && break; sleep 0.1; done
field() { python3 -c "import json,sys; print(json.load(open('$work/emulator.json'))['$1'])"; }
control="$(field control_url)"
ca="$(field ca_cert)"
export AZURE_TENANT_ID="$(field tenant_id)" AZURE_CLIENT_ID="$(field client_id)" AZURE_CLIENT_SECRET="$(field client_secret)"
export AZURE_AUTHORITY_HOST="$(field authority_url)" MIDCORE_AZURE_CA_FILE="$ca" NO_PROXY='*'
export MIDCORE_AZURE_RESOLVE="$(python3 -c "import json; i=json.load(open('$work/emulator.json')); print(','.join(h+'=127.0.0.1' for h in i['resolve']))")"
reference="$(field key_reference_prefix)bench"
ctl() { curl --silent --show-error --fail --cacert "$ca" -X "$1" "$control/$2" ${3:+-H 'content-type: application/json' -d "$3"}; }
ctl POST faults "{\"latency_ms\": $latency}" > /dev/null

# 2. A bundle with MODULES distinct WASM modules and one loose file.
mkdir -p "$work/bundle/runners"
echo "bench" > "$work/bundle/readme.txt"
for i in $(seq 1 "$modules"); do
  printf '\0asm\1\0\0\0\0\14\13module%05d' "$i" > "$work/bundle/runners/runner-$i.wasm"
done

# 3. Timed runs: wall time of `midcore-sign sign` and the emulator's counters.
run_case() {
  local label="$1"; shift
  local times=() throttled=0 requests=0 in_flight=0
  for _ in $(seq "$runs"); do
    # Let the vault's 10-second window of the previous run expire, so every
    # run starts with the vault's full budget, as a release job would.
    sleep 10.5
    rm -rf "$work/bundle/build"; find "$work/bundle" -name '*.wasm.sig' -delete
    ctl POST stats/reset > /dev/null
    local start end
    start=$(date +%s%N)
    env "$@" "$bin/midcore-sign" sign "$work/bundle" --key "$reference" --auth client-secret --product bench --version 1.0.0 > /dev/null
    end=$(date +%s%N)
    times+=("$(( (end - start) / 1000000 ))")
    local stats; stats="$(ctl GET stats)"
    throttled=$(( throttled + $(python3 -c "import json,sys; s=json.loads(sys.argv[1]); print(s['rate_limited_429']+s['injected_429'])" "$stats") ))
    requests=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['key_vault_requests'])" "$stats")
    in_flight=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['max_in_flight'])" "$stats")
  done
  local sorted median
  sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| %s | %s | %s ms | %s | %s | %s |\n' "$label" "$runs" "$median" "$sorted" "$requests" "$throttled/$in_flight"
}

echo "| case | runs | median | all runs (ms) | Key Vault requests per run | 429s total / max in flight |"
echo "|---|---|---|---|---|---|"
run_case "default settings"
run_case "sequential (MIDCORE_KV_CONCURRENCY=1)" MIDCORE_KV_CONCURRENCY=1
for concurrency in ${EXTRA_CONCURRENCY:-}; do
  run_case "MIDCORE_KV_CONCURRENCY=$concurrency" MIDCORE_KV_CONCURRENCY="$concurrency"
done
