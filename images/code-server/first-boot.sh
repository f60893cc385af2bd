#!/usr/bin/env bash
# The user's dotfiles and init script, run by boot.sh in the background while
# code-server starts. Fly gives a machine a fresh root filesystem at every start
# (docs apps/restart), so a dotfiles install would vanish with the first idle stop
# if it ran once per workspace: the repository is cloned once onto the volume, and its
# install script (then the init script) runs once per fresh root filesystem, that is
# once per boot. Outcomes and output are kept on the volume, where `swarm show` reads
# them: $volume/.swarm/first-boot/{dotfiles,init}.{json,log}.
set -uo pipefail

volume="${SWARM_VOLUME:-${DEFAULT_WORKSPACE:-/home/coder/project}}"
dotfiles_url="${SWARM_DOTFILES_URL:-}"
init_script="${SWARM_INIT_SCRIPT:-/opt/swarm/init/user-init.sh}"
step_timeout="${SWARM_FIRST_BOOT_TIMEOUT_SECONDS:-900}"
home="${HOME:-/home/coder}"

state="$volume/.swarm/first-boot"
clone="$volume/.swarm/dotfiles"
# On the root filesystem on purpose: it goes when Fly gives the machine a fresh one.
ran_marker="$home/.swarm-first-boot-ran"

mkdir -p "$state" || exit 1
[ -e "$ran_marker" ] && exit 0
: >"$ran_marker"

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# status STEP STATE EXIT SCRIPT STARTED: one JSON object, replaced atomically. Every
# value is ours (fixed words, digits, a file name from a fixed list), so no escaping.
status() {
  local step="$1" state_word="$2" code="$3" script="$4" started="$5" finished=""
  [ "$state_word" = running ] || finished="$(now)"
  printf '{"step":"%s","state":"%s","exit_code":%s,"script":"%s","started_at":"%s","finished_at":"%s"}\n' \
    "$step" "$state_word" "${code:-null}" "$script" "$started" "$finished" >"$state/$step.json.new" &&
    mv "$state/$step.json.new" "$state/$step.json"
}

# run STEP SCRIPT DIR: runs SCRIPT in DIR with its output in STEP.log and its outcome
# in STEP.json.
run() {
  local step="$1" script="$2" dir="$3" started code
  started="$(now)"
  status "$step" running "" "$(basename "$script")" "$started"
  (cd "$dir" && timeout "$step_timeout" bash "$script") >"$state/$step.log" 2>&1
  code=$?
  if [ "$code" = 0 ]; then
    status "$step" succeeded "$code" "$(basename "$script")" "$started"
  elif [ "$code" = 124 ]; then
    echo "swarm first boot: $(basename "$script") ran over ${step_timeout}s and was stopped" >>"$state/$step.log"
    status "$step" timed_out "$code" "$(basename "$script")" "$started"
  else
    status "$step" failed "$code" "$(basename "$script")" "$started"
  fi
}

dotfiles() {
  local started
  started="$(now)"
  if [ ! -d "$clone/.git" ]; then
    status dotfiles cloning "" "" "$started"
    rm -rf "$clone.new"
    if ! timeout "$step_timeout" git clone --depth 1 --quiet "$dotfiles_url" "$clone.new" >"$state/dotfiles.log" 2>&1; then
      rm -rf "$clone.new"
      status dotfiles clone_failed "" "" "$started"
      return
    fi
    mv "$clone.new" "$clone"
  fi
  # The convention Coder and Codespaces share: the first of these that exists.
  local name
  for name in install.sh bootstrap.sh setup.sh; do
    if [ -f "$clone/$name" ]; then
      run dotfiles "$clone/$name" "$clone"
      return
    fi
  done
  # No install script: link the repository's dotfiles into the home, as Codespaces does,
  # never over a file that is already there.
  local file linked=0
  for file in "$clone"/.[!.]*; do
    name="$(basename "$file")"
    [ "$name" = .git ] && continue
    [ -e "$file" ] || continue
    if [ ! -e "$home/$name" ]; then
      ln -s "$file" "$home/$name" && linked=$((linked + 1))
    fi
  done
  echo "swarm first boot: no install.sh, bootstrap.sh or setup.sh; linked $linked dotfiles into $home" >"$state/dotfiles.log"
  status dotfiles linked 0 "" "$started"
}

[ -n "$dotfiles_url" ] && dotfiles
[ -f "$init_script" ] && run init "$init_script" "$volume"
exit 0
