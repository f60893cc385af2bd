#!/usr/bin/env bash
# The run step of .github/workflows/deploy-workspace.yml: creates one workspace with `swarm`.
#
# Inputs come as env vars, never interpolated into the workflow's shell (script injection):
#   INPUT_NAME (required), INPUT_REGION, INPUT_CPUS, INPUT_MEMORY, INPUT_STORAGE,
#   INPUT_IMAGE, INPUT_IP (shared|dedicated|private), INPUT_IDLE_TIMEOUT; empty = swarm's default.
#   SWARM_BIN: the swarm binary (default `swarm` on PATH). FLY_API_TOKEN, SWARM_DB: as for swarm.
#   GITHUB_STEP_SUMMARY, GITHUB_OUTPUT: written when set (the summary; outputs `url`, `created`).
#
# The password swarm generates is never printed: `create --json` is read into a variable and
# only the URL is taken from it. The user sets a password of their own with
# `swarm password NAME --rotate` against the store this run leaves (see the workflow).
#
# Exit codes as swarm's: 0 created (or already there, see below), 1 failure, 2 invalid input
# (nothing changed). Re-running with a name an earlier run created: that run's store is
# gone, so swarm sees an app it has no record of; if that app holds a machine tagged by
# swarm, the workspace is reported as already there (exit 0, nothing changed).
set -euo pipefail

swarm=${SWARM_BIN:-swarm}
name=${INPUT_NAME:-}

summary() {
  if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
    printf '%s\n' "$@" >>"$GITHUB_STEP_SUMMARY"
  fi
}

# fail CODE MESSAGE [printed]: `printed` when swarm has already said it on stderr.
fail() {
  local code=$1 message=$2
  [[ -n ${3:-} ]] || echo "error: $message" >&2
  summary "### Workspace ${name:-(no name)} was not deployed" "" "$message"
  exit "$code"
}

[[ -n $name ]] || fail 2 "invalid name: the input name is required"
# A secret that is not set arrives empty; without a token swarm would quietly use its
# local simulated Fly.io and "deploy" nothing.
[[ -n ${FLY_API_TOKEN:-}${FLY_ACCESS_TOKEN:-} ]] ||
  fail 2 "FLY_API_TOKEN is empty: add it as a repository secret (fly tokens create org)"
command -v jq >/dev/null || fail 1 "jq is needed to read swarm's JSON output"

# `--flag=value` and `-- NAME`: a value starting with `-` stays a value, never an option.
args=(create --json)
[[ -z ${INPUT_REGION:-} ]] || args+=("--region=$INPUT_REGION")
[[ -z ${INPUT_CPUS:-} ]] || args+=("--cpus=$INPUT_CPUS")
[[ -z ${INPUT_MEMORY:-} ]] || args+=("--memory=$INPUT_MEMORY")
[[ -z ${INPUT_STORAGE:-} ]] || args+=("--storage=$INPUT_STORAGE")
[[ -z ${INPUT_IMAGE:-} ]] || args+=("--image=$INPUT_IMAGE")
[[ -z ${INPUT_IP:-} ]] || args+=("--ip=$INPUT_IP")
[[ -z ${INPUT_IDLE_TIMEOUT:-} ]] || args+=("--idle-timeout=$INPUT_IDLE_TIMEOUT")
args+=(-- "$name")

# The document holds the password: it stays in this variable and is never echoed.
# swarm's stderr (warnings, its own error line) is shown once the outcome is known.
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
status=0
created=$("$swarm" "${args[@]}" 2>"$errors") || status=$?

if [[ $status -eq 0 ]]; then
  url=$(jq -er '.workspace.url' <<<"$created") || fail 1 "swarm's answer has no workspace URL"
  region=$(jq -r '.workspace.spec.region // empty' <<<"$created")
  mapfile -t notes < <(jq -r '.notes[]?' <<<"$created")
  unset created
  cat "$errors" >&2
  echo "Workspace $name is running: $url"
  summary "### Workspace $name is running" "" "URL: $url" ""
  [[ -z $region ]] || summary "Region: $region" ""
  for note in "${notes[@]}"; do
    summary "- note: $note"
  done
  summary "" "The generated password was not shown (it would be readable in this run's log)." \
    "Set your own: download this run's artifact \`swarm-store-$name\`, then run" \
    "\`SWARM_DB=sqlite://\$PWD/swarm.db swarm password $name --rotate\` with your Fly.io token."
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then
    printf 'url=%s\ncreated=true\n' "$url" >>"$GITHUB_OUTPUT"
  fi
  exit 0
fi

message=$(jq -r '.error // empty' <<<"$created" 2>/dev/null || true)
unset created
[[ -n $message ]] || message="swarm create failed (exit $status)"

# An earlier run's workspace: Fly has the app, this fresh store has no record of it.
if [[ $status -eq 2 && $message == *"is already taken on Fly.io"* ]]; then
  report=$("$swarm" reconcile --json) || fail 1 "$message (and reading Fly.io to tell whether it is an earlier run's workspace failed)"
  if jq -e --arg app "$name" 'any(.actions[]?; .kind == "orphan_machine" and .app == $app)' <<<"$report" >/dev/null; then
    # No record to read the URL from: Fly's public one (a private workspace has none).
    url="https://$name.fly.dev"
    echo "Workspace $name already exists (made by swarm, e.g. an earlier run of this workflow): $url"
    echo "Nothing was changed; this run's inputs were not applied."
    summary "### Workspace $name already exists" "" "URL: $url (private workspaces: http://$name.internal:8080)" "" \
      "It was made by swarm earlier (e.g. by an earlier run of this workflow). Nothing was changed;" \
      "this run's inputs were not applied. Change it with \`swarm\` against the store of the run that made it."
    if [[ -n ${GITHUB_OUTPUT:-} ]]; then
      printf 'url=%s\ncreated=false\n' "$url" >>"$GITHUB_OUTPUT"
    fi
    exit 0
  fi
fi
if [[ -s $errors ]]; then
  cat "$errors" >&2
  fail "$status" "$message" printed
fi
fail "$status" "$message"
