#!/usr/bin/env bash
# Benchmarks the audit ledger against the machine's own limits:
#   1. OpenSSL's RSA-3072 verify rate per core (`openssl speed rsa3072`),
#   2. replay of a ledger of RECEIPTS receipts (default one million, RSA-3072)
#      with `midcore-verify ledger verify`, which checks every signature,
#   3. durable appends per second against the disk's write+fdatasync rate.
# Usage: scripts/bench/ledger.sh [RECEIPTS] [APPENDS]
# The generated ledger is kept in $LEDGER_BENCH_DIR (default target/ledger-bench)
# and reused by later runs with the same RECEIPTS, because signing a million
# RSA-3072 receipts takes a quarter of an hour on two cores.
set -euo pipefail
cd "$(dirname "$0")/../.."

receipts=${1:-1000000}
appends=${2:-2000}
target=${CARGO_TARGET_DIR:-target}
work=${LEDGER_BENCH_DIR:-$target/ledger-bench}
mkdir -p "$work"

cargo build --release --locked -p midcore-verifier --bin midcore-verify --example ledger_bench
verify="$target/release/midcore-verify"
bench="$target/release/examples/ledger_bench"

echo "== machine"
echo "cores: $(nproc); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
openssl version

echo "== openssl speed rsa3072 (one core)"
openssl speed -seconds 5 rsa3072 2>/dev/null | tail -1

ledger="$work/bench-$receipts.ledger"
key="$work/bench-$receipts.pub.pem"
if [ ! -s "$ledger" ] || [ ! -s "$key" ]; then
  echo "== generating $receipts signed receipts"
  "$bench" generate "$receipts" "$ledger.tmp" "$key"
  mv "$ledger.tmp" "$ledger"
fi
echo "ledger: $ledger ($(stat -c %s "$ledger") bytes)"

echo "== replay: midcore-verify ledger verify (all signatures, all cores)"
# Read the file once first, so the timing measures verification, not the first disk read.
cat "$ledger" > /dev/null
/usr/bin/time -f "wall %e s, user %U s, system %S s, max RSS %M KiB" \
  "$verify" ledger verify "$ledger" --receipt-key "$key"
echo "receipts: $receipts"

echo "== monthly report (structure only, no signatures)"
/usr/bin/time -f "wall %e s" "$verify" ledger report "$ledger" --month 2026-01 >/dev/null

echo "== durable appends ($appends, each verified and fdatasync'ed) in $work"
"$bench" append "$appends" "$work"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
