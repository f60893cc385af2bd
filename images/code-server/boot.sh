#!/usr/bin/env bash
# Workspace boot: seed the volume with the image's baked extensions and settings,
# then exec code-server's own entrypoint. Everything outside the volume is replaced
# on image update, rollback, move or restore, so everything that must last lives on it.
set -euo pipefail

baked="${SWARM_BAKED_DIR:-/opt/swarm}"
volume="${SWARM_VOLUME:-${DEFAULT_WORKSPACE:-/home/coder/project}}"
workspace="${DEFAULT_WORKSPACE:-$volume}"
exec_cmd="${SWARM_BOOT_EXEC:-/usr/bin/entrypoint.sh}"

die() {
  echo "swarm boot: $*" >&2
  exit 1
}

[ -d "$volume" ] || die "volume directory $volume does not exist (is the volume mounted? set SWARM_VOLUME)"
if [ ! -w "$volume" ] && command -v sudo >/dev/null 2>&1; then
  # A fresh Fly volume is root-owned; the image runs as coder with passwordless sudo.
  sudo -n chown "$(id -u):$(id -g)" "$volume" 2>/dev/null || true
fi
[ -w "$volume" ] || die "volume directory $volume is not writable by uid $(id -u)"
[ -d "$baked/extensions" ] || die "baked extensions directory $baked/extensions does not exist (set SWARM_BAKED_DIR)"

# Never start with a password code-server made up: nobody could log in.
if [ -z "${HASHED_PASSWORD:-}" ] && [ -z "${PASSWORD:-}" ]; then
  die "HASHED_PASSWORD is not set (swarm sets it when it creates the machine)"
fi

idle_args=()
if [ -n "${CODE_SERVER_IDLE_TIMEOUT_SECONDS:-}" ]; then
  # code-server refuses <= 60; say so before it starts rather than in its log.
  case "$CODE_SERVER_IDLE_TIMEOUT_SECONDS" in
    '' | *[!0-9]*) die "CODE_SERVER_IDLE_TIMEOUT_SECONDS must be a whole number of seconds, got '$CODE_SERVER_IDLE_TIMEOUT_SECONDS'" ;;
  esac
  [ "$CODE_SERVER_IDLE_TIMEOUT_SECONDS" -gt 60 ] ||
    die "CODE_SERVER_IDLE_TIMEOUT_SECONDS must be greater than 60, got $CODE_SERVER_IDLE_TIMEOUT_SECONDS"
  idle_args=(--idle-timeout-seconds "$CODE_SERVER_IDLE_TIMEOUT_SECONDS")
fi

state="$volume/.swarm"
ext_dir="$state/code-server/extensions"
data_dir="$state/code-server/data"
manifest="$state/baked-extensions.txt"
tmp="$state/tmp"
mkdir -p "$ext_dir" "$data_dir/User" "$tmp"

# Folders (publisher.name-version[-platform]) the image bakes now.
mapfile -t now < <(find "$baked/extensions" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f\n' | LC_ALL=C sort)
# Folders an earlier boot copied onto the volume: only these may be removed.
placed=()
[ -f "$manifest" ] && mapfile -t placed < <(grep -v '^[[:space:]]*$' "$manifest" || true)

contains() {
  local needle="$1"
  shift
  local item
  for item in "$@"; do
    [ "$item" = "$needle" ] && return 0
  done
  return 1
}

changed=0
keep=()
# An old baked version or an extension the image dropped: remove it, it was ours.
for dir in "${placed[@]}"; do
  if contains "$dir" "${now[@]}"; then
    keep+=("$dir")
  elif [ -e "$ext_dir/$dir" ]; then
    rm -rf "${ext_dir:?}/$dir"
    echo "swarm boot: removed $dir (no longer baked)" >&2
    changed=1
  fi
done
for dir in "${now[@]}"; do
  if contains "$dir" "${placed[@]}"; then
    # Placed before; if it is gone the user uninstalled or updated it, so leave it gone.
    continue
  fi
  if [ -e "$ext_dir/$dir" ]; then
    # The user installed this very version: it stays theirs, never ours to remove.
    continue
  fi
  # Copy then rename, so an interrupted boot never leaves a half extension.
  rm -rf "${tmp:?}/$dir"
  cp -R "$baked/extensions/$dir" "$tmp/$dir"
  mv "$tmp/$dir" "$ext_dir/$dir"
  keep+=("$dir")
  echo "swarm boot: installed $dir" >&2
  changed=1
done

if [ "$changed" = 1 ]; then
  # VS Code lists only what extensions.json names; without the file it rescans the
  # folder (metadata is kept in each package.json) and writes a fresh one.
  rm -f "$ext_dir/extensions.json"
fi
if [ "${#keep[@]}" -gt 0 ]; then
  printf '%s\n' "${keep[@]}" | LC_ALL=C sort >"$manifest.new"
else
  : >"$manifest.new"
fi
mv "$manifest.new" "$manifest"

if [ -f "$baked/settings.json" ] && [ ! -e "$data_dir/User/settings.json" ]; then
  cp "$baked/settings.json" "$data_dir/User/settings.json"
  echo "swarm boot: installed default settings" >&2
fi

# The user's dotfiles and init script run beside code-server, never in its way: a slow
# install must not hold the editor (or its health check) back.
first_boot="${SWARM_FIRST_BOOT:-$(dirname "$0")/first-boot.sh}"
if [ -n "${SWARM_DOTFILES_URL:-}" ] || [ -f "${SWARM_INIT_SCRIPT:-/opt/swarm/init/user-init.sh}" ]; then
  bash "$first_boot" </dev/null >/dev/null 2>&1 &
fi

exec "$exec_cmd" \
  --bind-addr 0.0.0.0:8080 \
  --user-data-dir "$data_dir" \
  --extensions-dir "$ext_dir" \
  "${idle_args[@]}" \
  "$@" \
  "$workspace"
