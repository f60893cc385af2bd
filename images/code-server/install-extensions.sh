#!/usr/bin/env bash
# Build-time: install every extension named in extensions.txt into a directory
# outside the volume. Usage: install-extensions.sh <extensions.txt> <dir>
set -euo pipefail

list="$1"
dir="$2"
code_server="${CODE_SERVER:-code-server}"

mkdir -p "$dir"
wanted=()
while IFS= read -r line || [ -n "$line" ]; do
  line="${line%%#*}"
  line="$(printf '%s' "$line" | tr -d '[:space:]')"
  [ -n "$line" ] || continue
  wanted+=("$line")
done <"$list"
[ "${#wanted[@]}" -gt 0 ] || {
  echo "install-extensions: $list names no extension" >&2
  exit 1
}

for ext in "${wanted[@]}"; do
  "$code_server" --extensions-dir "$dir" --install-extension "$ext"
done

# Fail the build if one did not land: an install error must not ship a thinner image.
installed="$("$code_server" --extensions-dir "$dir" --list-extensions --show-versions | tr '[:upper:]' '[:lower:]')"
for ext in "${wanted[@]}"; do
  id="$(printf '%s' "${ext%@*}" | tr '[:upper:]' '[:lower:]')"
  if ! grep -q "^${id}@" <<<"$installed"; then
    echo "install-extensions: $ext is not installed in $dir" >&2
    exit 1
  fi
done
# What was resolved, for anyone asking which versions an image carries.
printf '%s\n' "$installed" >"$dir/../extensions.lock"
