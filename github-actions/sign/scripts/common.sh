# Helpers shared by the action's step scripts: workflow commands with the escaping that
# @actions/core uses, and step outputs. Sourced, not executed.

# Escapes a workflow command's message: %, CR and LF.
gha_escape_data() {
  local text="$1"
  text="${text//'%'/%25}"
  text="${text//$'\r'/%0D}"
  text="${text//$'\n'/%0A}"
  printf '%s' "$text"
}

# Escapes a workflow command's property value: the message characters plus ':' and ','.
gha_escape_property() {
  local text
  text="$(gha_escape_data "$1")"
  text="${text//:/%3A}"
  text="${text//,/%2C}"
  printf '%s' "$text"
}

# Prints an ::error annotation. Arguments: title, message, optional file.
gha_error() {
  local properties
  properties="title=$(gha_escape_property "$1")"
  if [[ -n "${3:-}" ]]; then
    properties="file=$(gha_escape_property "$3"),$properties"
  fi
  printf '::error %s::%s\n' "$properties" "$(gha_escape_data "$2")"
}

# Reports an invalid action input as an annotation naming the input, then fails the step.
fail_input() {
  gha_error "Midcore sign input '$1'" "$2"
  exit 1
}

# Appends a single-line step output to the file named by GITHUB_OUTPUT.
gha_set_output() {
  local name="$1" value="$2"
  if [[ "$value" == *$'\n'* || "$value" == *$'\r'* ]]; then
    gha_error "Midcore sign" "internal error: step output '$name' contains a line break"
    exit 1
  fi
  printf '%s=%s\n' "$name" "$value" >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set: run this script as a step of the action}"
}

# Exports AZURE_CLIENT_ID and AZURE_TENANT_ID from the inputs, falling back to the workflow's
# environment, and checks the settings that the chosen credential needs.
resolve_azure_identity() {
  local client_id="${INPUT_CLIENT_ID:-${AZURE_CLIENT_ID:-}}"
  local tenant_id="${INPUT_TENANT_ID:-${AZURE_TENANT_ID:-}}"

  case "$INPUT_AUTH" in
    github-oidc | client-secret | workload-identity)
      [[ -n "$client_id" ]] || fail_input client-id "the '$INPUT_AUTH' credential needs the app's client id: set the client-id input or the AZURE_CLIENT_ID environment variable"
      [[ -n "$tenant_id" ]] || fail_input tenant-id "the '$INPUT_AUTH' credential needs the Entra ID tenant id: set the tenant-id input or the AZURE_TENANT_ID environment variable"
      ;;
    managed-identity | azure-cli) ;;
    *)
      fail_input auth "unknown credential '$INPUT_AUTH': expected github-oidc, client-secret, workload-identity, managed-identity or azure-cli"
      ;;
  esac

  if [[ "$INPUT_AUTH" == github-oidc ]]; then
    if [[ -z "${ACTIONS_ID_TOKEN_REQUEST_URL:-}" || -z "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}" ]]; then
      fail_input auth "the job cannot request a GitHub OIDC token (ACTIONS_ID_TOKEN_REQUEST_URL is not set): add 'permissions: id-token: write' to the job"
    fi
  fi

  if [[ -n "$client_id" ]]; then export AZURE_CLIENT_ID="$client_id"; fi
  if [[ -n "$tenant_id" ]]; then export AZURE_TENANT_ID="$tenant_id"; fi
}

# Runs a command with its output shown in the log, and adds an ::error annotation naming the
# command when it fails without printing one itself. Arguments: title, command and arguments.
run_reported() {
  local title="$1"
  shift
  local log status
  log="$(mktemp "${RUNNER_TEMP:-/tmp}/midcore-step.XXXXXX")"
  set +e
  "$@" 2>&1 | tee "$log"
  status="${PIPESTATUS[0]}"
  set -e
  if [[ "$status" -ne 0 ]] && ! grep -q '^::error' "$log"; then
    gha_error "$title" "$(basename "$1") exited with status $status; the lines above show the cause"
  fi
  rm -f "$log"
  return "$status"
}
