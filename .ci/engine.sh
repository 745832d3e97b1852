#!/usr/bin/env bash
# A throw-away Docker engine and registry for the engine tests, kept entirely in one temp dir.
#
#   eval "$(.ci/engine.sh start)"   # start dockerd + a registry; prints the env to export
#   .ci/engine.sh stop [DIR]        # stop both and delete DIR (default: $IMAGESCOPE_ENGINE_DIR)
#
# `start` prints shell `export` lines for DOCKER_HOST, IMAGESCOPE_TEST_REGISTRY and
# IMAGESCOPE_ENGINE_DIR on stdout (and writes them to $IMAGESCOPE_ENGINE_DIR/env); everything
# else goes to stderr. dockerd runs with the vfs storage driver, no iptables, no bridge and its
# own config file, so it touches nothing outside its dir and needs no kernel overlay support.
# The registry is Debian's `docker-registry` (distribution v2) on 127.0.0.1, which dockerd
# treats as insecure (plain http) by default. Needs root (dockerd does), curl, dockerd and
# docker-registry; `.ci/run` installs missing packages.
set -euo pipefail

readonly ready_seconds=${IMAGESCOPE_ENGINE_WAIT:-60}
readonly stop_seconds=30

log() { printf 'engine.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Wait up to $1 seconds for the command "$3..." to succeed: 1 on time-out, 2 when pid $2 exits.
wait_for() {
  local seconds=$1 pid=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    running "$pid" || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

show_log() { log "last lines of $1:"; tail -n 20 "$1" >&2 || true; }

docker_answers() { [ "$(curl -sf --max-time 2 --unix-socket "$1" http://localhost/_ping)" = OK ]; }
registry_answers() { curl -sf --max-time 2 -o /dev/null "http://$1/v2/"; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_dockerd() {
  local dir=$1 pid rc
  printf '{}\n' >"$dir/daemon.json" # not /etc/docker/daemon.json: the host's settings stay out
  # Own containerd namespaces, in case dockerd attaches to a system containerd instead of
  # starting its own under --exec-root.
  local ns
  ns="imagescope-$(basename "$dir" | tr -c 'A-Za-z0-9\n' '-')"
  dockerd \
    --config-file "$dir/daemon.json" \
    --storage-driver vfs \
    --iptables=false --ip-forward=false --bridge=none \
    --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$dir/dockerd.pid" \
    --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-plugins" \
    -H "unix://$dir/docker.sock" \
    </dev/null >"$dir/dockerd.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/dockerd.launched"
  rc=0
  wait_for "$ready_seconds" "$pid" docker_answers "$dir/docker.sock" || rc=$?
  case $rc in
    0) ;;
    2) show_log "$dir/dockerd.log"; die "dockerd exited during start-up (see above)" ;;
    *)
      show_log "$dir/dockerd.log"
      die "dockerd did not answer on $dir/docker.sock within ${ready_seconds}s" ;;
  esac
}

start_registry() {
  local dir=$1 port pid rc attempt
  mkdir -p "$dir/registry"
  for attempt in 1 2 3 4 5; do
    port=$((30000 + RANDOM % 30000))
    port_in_use "$port" && continue
    cat >"$dir/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YAML
    docker-registry serve "$dir/registry.yml" </dev/null >"$dir/registry.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/registry.pid"
    rc=0
    wait_for "$ready_seconds" "$pid" registry_answers "127.0.0.1:$port" || rc=$?
    case $rc in
      0) echo "127.0.0.1:$port"; return 0 ;;
      2)
        grep -q 'address already in use' "$dir/registry.log" || {
          show_log "$dir/registry.log"; die "the registry exited during start-up (see above)"
        }
        log "port $port is taken (attempt $attempt); trying another" ;;
      *)
        show_log "$dir/registry.log"
        die "registry did not answer on 127.0.0.1:$port within ${ready_seconds}s" ;;
    esac
  done
  show_log "$dir/registry.log"
  die "registry did not start after 5 attempts"
}

cmd_start() {
  [ "$(id -u)" = 0 ] || die "dockerd needs root; run as root (e.g. sudo -E $0 start)"
  local tool
  for tool in dockerd docker-registry curl; do
    command -v "$tool" >/dev/null \
      || die "$tool not found (apt-get install -y docker.io docker-registry curl)"
  done
  local dir
  dir=$(mktemp -d /tmp/imagescope-engine.XXXXXX)
  touch "$dir/.imagescope-engine"
  # Whatever way start fails or is interrupted, stop what it started.
  started_dir=$dir
  trap '[ -z "$started_dir" ] || cmd_stop "$started_dir" >&2' EXIT
  trap 'exit 130' INT TERM
  local began=$SECONDS registry
  start_dockerd "$dir"
  registry=$(start_registry "$dir")
  started_dir=
  cat >"$dir/env" <<ENV
export DOCKER_HOST=unix://$dir/docker.sock
export IMAGESCOPE_TEST_REGISTRY=$registry
export IMAGESCOPE_ENGINE_DIR=$dir
ENV
  log "dockerd and registry $registry ready in $((SECONDS - began))s; state in $dir"
  cat "$dir/env"
}

# Whether pid $1 runs (a zombie has exited; its parent, often init, has yet to reap it).
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# TERM pid $1 and wait up to $2 seconds for it to exit, then KILL it.
stop_pid() {
  local pid=$1 seconds=$2 deadline
  running "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + seconds))
  while running "$pid"; do
    if ((SECONDS >= deadline)); then
      log "pid $pid still running after ${seconds}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.2
  done
}

# Engine processes (containerd, shims, runc left behind by a killed dockerd) whose command line
# mentions the dir $1.
engine_pids_in() {
  local proc
  for proc in /proc/[0-9]*; do
    case $(cat "$proc/comm" 2>/dev/null) in
      dockerd | containerd* | docker-registry | runc | docker-proxy | docker-init) ;;
      *) continue ;;
    esac
    running "${proc#/proc/}" || continue
    tr '\0' ' ' <"$proc/cmdline" 2>/dev/null | grep -qF -- "$1/" && echo "${proc#/proc/}"
  done
  return 0
}

cmd_stop() {
  local dir=${1:-${IMAGESCOPE_ENGINE_DIR:-}}
  dir=${dir%/}
  [ -n "$dir" ] || die "stop: no directory given and IMAGESCOPE_ENGINE_DIR is not set"
  [ -d "$dir" ] || { log "stop: $dir is already gone"; return 0; }
  [ -e "$dir/.imagescope-engine" ] \
    || die "stop: $dir was not made by engine.sh start; leaving it alone"
  local pid
  if [ -s "$dir/registry.pid" ]; then stop_pid "$(cat "$dir/registry.pid")" 10; fi
  # dockerd stops its containers and its containerd itself when it gets TERM.
  local file
  for file in "$dir/dockerd.pid" "$dir/dockerd.launched"; do # the same pid, unless dockerd forked
    if [ -s "$file" ]; then stop_pid "$(cat "$file")" "$stop_seconds"; fi
  done
  for pid in $(engine_pids_in "$dir"); do
    log "killing leftover $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  # A killed dockerd leaves its mounts (data root, container shm) behind: unmount deepest first.
  local mnt
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || log "could not unmount $mnt"
  done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r)
  rm -rf --one-file-system "$dir"
  log "stopped; removed $dir"
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  *) echo "usage: $0 start | stop [DIR]" >&2; exit 2 ;;
esac
