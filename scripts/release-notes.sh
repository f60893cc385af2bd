#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version (Keep a Changelog: `## [0.2.0] - 2026-12-07`),
# without its heading, for `gh release create --notes-file`.
# Usage: scripts/release-notes.sh VERSION [CHANGELOG]   (VERSION with or without a leading v;
# CHANGELOG defaults to $CHANGELOG, then the repository's CHANGELOG.md)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 || -z $1 ]]; then
  echo "usage: $0 VERSION [CHANGELOG]" >&2
  exit 2
fi
version=${1#v}
changelog=${2:-${CHANGELOG:-"$(dirname "$0")/../CHANGELOG.md"}}
if [[ ! -r $changelog ]]; then
  echo "error: cannot read the changelog $changelog" >&2
  exit 1
fi

# The section runs from its heading to the next `## ` heading or the link definitions
# at the end; blank lines around it are dropped.
notes=$(awk -v version="$version" '
  BEGIN { heading = "## [" version "]" }
  /^## / {
    if (found) exit
    # `]` ends the version: 0.2 does not match 0.2.0.
    if (index($0, heading) == 1) { found = 1; next }
  }
  found && /^\[[^]]+\]: / { exit }
  found { print }
  END { if (!found) exit 3 }
' "$changelog") || status=$?
case ${status:-0} in
  0) ;;
  3)
    echo "error: $changelog has no section for version $version (a heading \"## [$version] - YYYY-MM-DD\")" >&2
    exit 1
    ;;
  *) exit "$status" ;;
esac
# Command substitution already dropped trailing newlines; drop leading blank lines too.
notes=$(printf '%s\n' "$notes" | sed '/./,$!d')
if [[ -z $notes ]]; then
  echo "error: the section for version $version in $changelog is empty" >&2
  exit 1
fi
printf '%s\n' "$notes"
