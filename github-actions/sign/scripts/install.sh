#!/usr/bin/env bash
# Resolves the midcore-sign and midcore-verify binaries for the next steps. Without signer-path
# it downloads the release archive for this runner's platform and checks its SHA-256 against
# the file published with it (and against the signer-sha256 input when given).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

exe_suffix=""
case "${RUNNER_OS:-}" in
  Windows) exe_suffix=".exe" ;;
esac

sign=""
verify=""
if [[ -n "${INPUT_SIGNER_PATH:-}" ]]; then
  [[ -f "$INPUT_SIGNER_PATH" ]] || fail_input signer-path "no file at '$INPUT_SIGNER_PATH': give the path of a midcore-sign binary, or leave the input empty to install one"
  [[ -x "$INPUT_SIGNER_PATH" ]] || fail_input signer-path "'$INPUT_SIGNER_PATH' is not executable"
  sign="$INPUT_SIGNER_PATH"
  echo "Using the signer given in signer-path: $sign"
fi
if [[ -n "${INPUT_VERIFIER_PATH:-}" ]]; then
  [[ -f "$INPUT_VERIFIER_PATH" && -x "$INPUT_VERIFIER_PATH" ]] || fail_input verifier-path "no executable file at '$INPUT_VERIFIER_PATH': give the path of a midcore-verify binary, or leave the input empty"
  verify="$INPUT_VERIFIER_PATH"
elif [[ -n "$sign" ]]; then
  sibling="$(dirname "$sign")/midcore-verify$exe_suffix"
  if [[ -f "$sibling" && -x "$sibling" ]]; then
    verify="$sibling"
  fi
fi
if [[ -n "$verify" ]]; then
  echo "Using the verifier: $verify"
fi

if [[ -z "$sign" || -z "$verify" ]]; then
  # 1. The archive for this runner.
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) target=x86_64-unknown-linux-gnu ;;
    Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
    macOS/ARM64) target=aarch64-apple-darwin ;;
    macOS/X64) target=x86_64-apple-darwin ;;
    Windows/X64) target=x86_64-pc-windows-msvc ;;
    *) fail_input signer-path "no Midcore release is built for runner ${RUNNER_OS:-unknown OS}/${RUNNER_ARCH:-unknown architecture}: build midcore-sign and give its path in signer-path" ;;
  esac
  asset="midcore-$target.tar.gz"

  # 2. Where the release lives, and which one.
  version="${INPUT_SIGNER_VERSION:-}"
  if [[ -z "$version" && "${MIDCORE_ACTION_REF:-}" =~ ^v[0-9] ]]; then
    version="$MIDCORE_ACTION_REF"
  fi
  base="${INPUT_RELEASE_URL:-}"
  if [[ -z "$base" ]]; then
    repository="${MIDCORE_ACTION_REPOSITORY:-${GITHUB_REPOSITORY:-}}"
    [[ -n "$repository" ]] || fail_input release-url "cannot tell which repository publishes the releases: set release-url"
    base="${GITHUB_SERVER_URL:-https://github.com}/$repository/releases"
  fi
  base="${base%/}"
  # The authority (between :// and the next /) is checked as a whole: curl
  # reads "user@" before the host, so a text prefix match is not enough.
  authority="${base#*://}"
  authority="${authority%%/*}"
  if [[ "$authority" == *@* ]]; then
    fail_input release-url "'$base' contains user information (an @ before the host); give the plain release URL"
  fi
  case "$base" in
    https://*) protocols="=https" ;;
    http://*)
      [[ "$authority" =~ ^(127\.0\.0\.1|localhost)(:[0-9]+)?$ ]] ||
        fail_input release-url "'$base' is not an https URL; plain http is accepted only for loopback test servers"
      protocols="=http"
      ;;
    *) fail_input release-url "'$base' is not an https URL; plain http is accepted only for loopback test servers" ;;
  esac
  if [[ -z "$version" || "$version" == latest ]]; then
    url="$base/latest/download/$asset"
  else
    url="$base/download/$version/$asset"
  fi

  # 3. Download the archive and its published SHA-256. On Windows, Git Bash's GNU tar reads
  # "D:\..." as a remote host, so the temp folder is converted to its /d/... form first.
  # NOTE: the Windows and macOS paths of this script have not been run on a hosted runner.
  temp_root="${RUNNER_TEMP:-/tmp}"
  if [[ "${RUNNER_OS:-}" == Windows ]] && command -v cygpath >/dev/null 2>&1; then
    temp_root="$(cygpath -u "$temp_root")"
  fi
  work="$(mktemp -d "$temp_root/midcore-tools.XXXXXX")"
  echo "Downloading $url"
  curl --fail --silent --show-error --location --retry 3 --proto "$protocols" --proto-redir "$protocols" \
    --output "$work/$asset" "$url" || fail_input signer-version "download of $url failed (see the curl message above): check signer-version and that the release has the asset $asset"
  curl --fail --silent --show-error --location --retry 3 --proto "$protocols" --proto-redir "$protocols" \
    --output "$work/$asset.sha256" "$url.sha256" || fail_input signer-version "download of $url.sha256 failed: the release must publish a SHA-256 file beside $asset"

  # 4. Check the archive before unpacking anything from it.
  published="$(head -n 1 "$work/$asset.sha256" | cut -d ' ' -f 1 | tr 'A-F' 'a-f')"
  [[ "$published" =~ ^[0-9a-f]{64}$ ]] || fail_input signer-version "$url.sha256 does not start with a hex SHA-256; the release assets are malformed"
  if command -v sha256sum >/dev/null 2>&1; then
    actual="$(sha256sum "$work/$asset" | cut -d ' ' -f 1)"
  else
    actual="$(shasum -a 256 "$work/$asset" | cut -d ' ' -f 1)"
  fi
  if [[ "$actual" != "$published" ]]; then
    fail_input signer-version "SHA-256 mismatch for $url: downloaded $actual, published $published. The download is corrupt or the release was altered; nothing was installed"
  fi
  expected="$(printf '%s' "${INPUT_SIGNER_SHA256:-}" | tr 'A-F' 'a-f')"
  if [[ -n "$expected" && "$actual" != "$expected" ]]; then
    fail_input signer-sha256 "SHA-256 mismatch for $url: downloaded $actual, expected $expected from the signer-sha256 input; nothing was installed"
  fi

  # 5. Unpack and hand the paths to the next steps.
  mkdir "$work/bin"
  tar -xzf "$work/$asset" -C "$work/bin"
  for tool in midcore-sign midcore-verify; do
    [[ -f "$work/bin/$tool$exe_suffix" ]] || fail_input signer-version "$asset has no $tool$exe_suffix at its top level"
  done
  echo "Installed $asset from $url (SHA-256 $actual, matches the published $asset.sha256)"
  [[ -n "$sign" ]] || sign="$work/bin/midcore-sign$exe_suffix"
  [[ -n "$verify" ]] || verify="$work/bin/midcore-verify$exe_suffix"
fi

gha_set_output sign "$sign"
gha_set_output verify "$verify"
