#!/usr/bin/env bash
# Signs the bundle through Key Vault. midcore-sign itself writes the step outputs (manifest,
# key-id, files), the job summary, ::add-mask:: for the tokens it handles and an ::error
# annotation for each failure, because GITHUB_ACTIONS is true.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ -n "${INPUT_BUNDLE:-}" ]] || fail_input bundle "the bundle input is empty: give the folder of the packaged app"
[[ -d "$INPUT_BUNDLE" ]] || fail_input bundle "bundle folder not found: '$INPUT_BUNDLE' (relative paths start at $PWD)"
[[ -n "${INPUT_KEY:-}" ]] || fail_input key "the key input is empty: give a key reference such as azure-kv://VAULT.vault.azure.net/keys/NAME"
arguments=(sign "$INPUT_BUNDLE" --key "$INPUT_KEY")
# A local:FILE key (dry runs and tests) takes no credentials, so --auth is left out for it.
if [[ "$INPUT_KEY" != local:* ]]; then
  resolve_azure_identity
  arguments+=(--auth "$INPUT_AUTH")
fi
if [[ -n "${INPUT_PRODUCT:-}" ]]; then arguments+=(--product "$INPUT_PRODUCT"); fi
if [[ -n "${INPUT_VERSION:-}" ]]; then arguments+=(--version "$INPUT_VERSION"); fi

run_reported "Midcore sign" "$MIDCORE_SIGN" "${arguments[@]}"
