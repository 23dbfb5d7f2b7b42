#!/usr/bin/env bash
# Key-rotation runbook steps for the manifest signing key.
#
# A rotation overlaps the old and the new key: the shell first ships a trust set
# that pins both, only then do releases switch to the new key, and the old key
# is dropped from the trust set last. docs/key-rotation.md explains each phase.
#
# Usage:
#   scripts/key-rotation.sh export KEY_REF OUT_DIR [AUTH]
#       Writes OUT_DIR/<key id>.pub.pem for KEY_REF (local:FILE or azure-kv://...)
#       and prints its key id.
#   scripts/key-rotation.sh trust-set OUT_FILE PEM...
#       Writes the key ids of the given public keys, one a line, sorted: the
#       list the embedding application pins.
#   scripts/key-rotation.sh check BUNDLE TRUST_SET_FILE
#       Runs the launch check on BUNDLE trusting exactly the ids in the file.
#   scripts/key-rotation.sh rehearse
#       Runs the whole rotation with two throwaway local keys on a copy of
#       examples/bundle and checks every phase; exits non-zero on any surprise.
#
# SIGN and VERIFY name the binaries. Without them the script uses midcore-sign
# and midcore-verify from PATH, then the release and debug builds of this
# checkout (target/, or CARGO_TARGET_DIR when set).
set -euo pipefail

repo_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "key-rotation: $*" >&2; exit 2; }

# Prints the path of binary $1 (cargo package $2, override variable $3):
# from PATH, else from this checkout's builds.
find_binary() {
  local name=$1 package=$2 variable=$3 target=${CARGO_TARGET_DIR:-$repo_dir/target} candidate
  if command -v "$name" >/dev/null; then
    command -v "$name"
    return
  fi
  for candidate in "$target/release/$name" "$target/debug/$name"; do
    if [[ -x $candidate ]]; then
      echo "$candidate"
      return
    fi
  done
  die "$name not found on PATH or in $target; build it with \"cargo build --release --locked -p $package\", or set $variable to its path"
}

# Runs a command with its output hidden unless it fails; on failure prints
# that output and stops the script.
quiet() {
  local output
  if ! output=$("$@" 2>&1); then
    echo "key-rotation: failed: $*" >&2
    echo "$output" >&2
    exit 1
  fi
}

export_key() {
  local key_ref=$1 out_dir=${2%/} auth=${3:-}
  mkdir -p "$out_dir"
  local temporary="$out_dir/.export.pub.pem"
  rm -f "$temporary"
  if [[ -n "$auth" ]]; then
    quiet "$sign" key export-public --key "$key_ref" --auth "$auth" --out "$temporary"
  else
    quiet "$sign" key export-public --key "$key_ref" --out "$temporary"
  fi
  local key_id
  key_id=$(key_id_of "$temporary")
  mv "$temporary" "$out_dir/${key_id#sha256:}.pub.pem"
  echo "wrote $out_dir/${key_id#sha256:}.pub.pem" >&2
  echo "$key_id"
}

# The key id of a public-key PEM: sha256: and the hex SHA-256 of its DER SubjectPublicKeyInfo.
# Returns non-zero when openssl cannot read the file as a public key.
key_id_of() {
  local der digest
  der=$(openssl pkey -pubin -in "$1" -outform DER | base64 -w0) || return 1
  [[ -n $der ]] || return 1
  digest=$(base64 -d <<<"$der" | openssl dgst -sha256 -r | cut -d' ' -f1) || return 1
  echo "sha256:$digest"
}

trust_set() {
  local out_file=$1
  shift
  [[ $# -gt 0 ]] || die "trust-set needs at least one public-key PEM"
  local ids=() pem id
  for pem in "$@"; do
    [[ -f $pem && -r $pem ]] || die "$pem: public-key PEM not found or not readable"
    id=$(key_id_of "$pem" 2>/dev/null) && [[ $id =~ ^sha256:[0-9a-f]{64}$ ]] ||
      die "$pem: not a public-key PEM (openssl pkey -pubin cannot read it)"
    ids+=("$id")
  done
  printf '%s\n' "${ids[@]}" | sort -u >"$out_file.tmp"
  mv "$out_file.tmp" "$out_file"
  cat "$out_file"
}

check() {
  local bundle=$1 trust_file=$2
  [[ -f $trust_file && -r $trust_file ]] || die "$trust_file: trust-set file not found or not readable"
  # One key id a line. Blank lines and lines starting with # are skipped, and
  # the last line counts even without a final line feed.
  local args=() line key_id
  while IFS= read -r line || [[ -n $line ]]; do
    key_id=${line%$'\r'}
    key_id=${key_id#"${key_id%%[![:space:]]*}"}
    key_id=${key_id%"${key_id##*[![:space:]]}"}
    [[ -z $key_id || $key_id == \#* ]] && continue
    [[ $key_id =~ ^sha256:[0-9a-f]{64}$ ]] ||
      die "$trust_file: line \"$line\" is not a key id (sha256: and 64 lower-case hex digits)"
    args+=(--trust "$key_id")
  done <"$trust_file"
  [[ ${#args[@]} -gt 0 ]] || die "$trust_file lists no key ids"
  "$verify" launch "$bundle" "${args[@]}"
}

expect_status() {
  local expected=$1 what=$2
  shift 2
  set +e
  "$@" >/dev/null 2>&1
  local status=$?
  set -e
  if [[ $status -ne $expected ]]; then
    echo "rehearsal failed: $what exited with $status, expected $expected" >&2
    exit 1
  fi
  echo "  ok: $what (exit $status)"
}

rehearse() {
  local repo=$repo_dir
  rehearsal_dir=$(mktemp -d)
  trap 'rm -rf "$rehearsal_dir"' EXIT
  local work=$rehearsal_dir
  cp -R "$repo/examples/bundle" "$work/bundle"

  echo "phase 0: releases are signed with the old key; the shell trusts only the old key"
  quiet "$sign" keygen --private "$work/old.pem" --public "$work/old.pub.pem" --bits 2048
  quiet "$sign" sign "$work/bundle" --key "local:$work/old.pem"
  trust_set "$work/trust-old.txt" "$work/old.pub.pem" >/dev/null
  expect_status 0 "old release under the old trust set" check "$work/bundle" "$work/trust-old.txt"

  echo "phase 1: make the new key; ship a shell that trusts both keys"
  quiet "$sign" keygen --private "$work/new.pem" --public "$work/new.pub.pem" --bits 2048
  local new_id
  new_id=$(export_key "local:$work/new.pem" "$work/exported" 2>/dev/null)
  [[ -f "$work/exported/${new_id#sha256:}.pub.pem" ]] || { echo "rehearsal failed: export wrote no file" >&2; exit 1; }
  trust_set "$work/trust-both.txt" "$work/old.pub.pem" "$work/new.pub.pem" >/dev/null
  expect_status 0 "old release under the overlapping trust set" check "$work/bundle" "$work/trust-both.txt"

  echo "phase 2: sign releases with the new key"
  quiet "$sign" sign "$work/bundle" --key "local:$work/new.pem"
  expect_status 0 "new release under the overlapping trust set" check "$work/bundle" "$work/trust-both.txt"
  expect_status 1 "new release under a shell that was never updated" check "$work/bundle" "$work/trust-old.txt"

  echo "phase 3: drop the old key from the trust set"
  trust_set "$work/trust-new.txt" "$work/new.pub.pem" >/dev/null
  expect_status 0 "new release under the new trust set" check "$work/bundle" "$work/trust-new.txt"
  quiet "$sign" sign "$work/bundle" --key "local:$work/old.pem"
  expect_status 1 "a release signed with the retired key" check "$work/bundle" "$work/trust-new.txt"
  echo "rehearsal passed"
}

# Checks that an override named by SIGN or VERIFY is an executable file.
check_override() {
  local variable=$1 value=${!1:-}
  [[ -z $value || -x $value ]] || die "$variable=$value is not an executable file"
}
check_override SIGN
check_override VERIFY

case "${1:-}" in
  export | rehearse) sign=${SIGN:-$(find_binary midcore-sign midcore-signer SIGN)} ;;&
  check | rehearse) verify=${VERIFY:-$(find_binary midcore-verify midcore-verifier VERIFY)} ;;&
  *) ;;
esac

case "${1:-}" in
  export) [[ $# -ge 3 ]] || die "usage: $0 export KEY_REF OUT_DIR [AUTH]"; export_key "$2" "$3" "${4:-}" ;;
  trust-set) [[ $# -ge 3 ]] || die "usage: $0 trust-set OUT_FILE PEM..."; trust_set "${@:2}" ;;
  check) [[ $# -eq 3 ]] || die "usage: $0 check BUNDLE TRUST_SET_FILE"; check "$2" "$3" ;;
  rehearse) rehearse ;;
  *) die "usage: $0 export|trust-set|check|rehearse ... (see the comment at the top of this script)" ;;
esac
