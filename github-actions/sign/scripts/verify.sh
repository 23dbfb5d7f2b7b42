#!/usr/bin/env bash
# Runs the launch check on the signed bundle, trusting only the public key exported from the
# vault, never the integrity.pub.pem that the signer wrote into the bundle.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

export_arguments=(key export-public --key "$INPUT_KEY")
if [[ "$INPUT_KEY" != local:* ]]; then
  resolve_azure_identity
  export_arguments+=(--auth "$INPUT_AUTH")
fi
work="$(mktemp -d "${RUNNER_TEMP:-/tmp}/midcore-verify.XXXXXX")"
public_key="$work/vault-public.pem"

run_reported "Midcore sign: export the public key" \
  "$MIDCORE_SIGN" "${export_arguments[@]}" --out "$public_key"
# The launch check needs no credentials, so the ones in the job's environment are left out.
(
  unset AZURE_CLIENT_SECRET ACTIONS_ID_TOKEN_REQUEST_TOKEN SYSTEM_ACCESSTOKEN \
    AZURE_FEDERATED_TOKEN_FILE IDENTITY_HEADER
  run_reported "Midcore launch check" \
    "$MIDCORE_VERIFY" launch "$INPUT_BUNDLE" --trust "$public_key" --mode full
)
echo "Launch check passed: $INPUT_BUNDLE verifies with the vault key ${MIDCORE_SIGNED_KEY_ID:-(key id not reported)}"
