# Shared settings and helpers for scripts/testenv. Sourced, not executed.
#
# Everything the test environment creates lives under $CACHE so that one directory holds the
# expensive parts (Go build, debootstrap tarball, registry blobs) and `rm -rf` resets it.
# Only runtime sockets go under /run (unix socket paths must stay short).
# The ports (5000, 6443, 2379, 10250...) and the docker socket are machine-wide, so there is
# one environment per machine: a second cache dir would find the first one's services running.

CACHE="${DEVLOOP_TESTENV_CACHE:-$HOME/.cache/devloop-testenv}"
BIN="$CACHE/bin"
LOGS="$CACHE/logs"
PIDS="$CACHE/pids"
PKI="$CACHE/pki"
CONF="$CACHE/conf"
STATE="$CACHE/state"
RUNDIR="/run/devloop-testenv"
KUBECONFIG_ADMIN="$CACHE/kubeconfig"
REGISTRY_HOST="localhost:5000"

# The Go toolchain usually lives outside the default PATH; the Kubernetes binaries are ours.
export PATH="$BIN:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

log() { echo "testenv: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Install Debian packages that are not installed yet. `apt-get update` is slow and needs the
# network, so it only runs when the install fails with the current package lists.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >"$LOGS/apt.log" 2>&1; then
    apt-get update >>"$LOGS/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOGS/apt.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed, see $LOGS/apt.log"
  fi
}

# A pid file is only trusted when the process still runs the expected executable, so a pid
# reused by an unrelated process after a reboot is never signalled.
daemon_pid() {
  local name=$1 pid exe
  [[ -f "$PIDS/$name.pid" ]] || return 1
  pid=$(<"$PIDS/$name.pid")
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ "$(basename "$exe")" == "$(<"$PIDS/$name.exe")" ]] || return 1
  echo "$pid"
}

daemon_running() { daemon_pid "$1" >/dev/null; }

# start_daemon NAME COMMAND...: run in its own session (setsid) so that it outlives the shell
# or pytest process that called `up`, with all output in $LOGS/NAME.log. Its stdio must not be
# inherited: a caller capturing our output would otherwise wait for the daemon to exit, and
# an inherited lock fd (9, see `up`) would keep the next `up` waiting forever.
start_daemon() {
  local name=$1; shift
  if daemon_running "$name"; then
    return 0
  fi
  log "starting $name (log: $LOGS/$name.log)"
  local exe
  exe=$(readlink -f "$(command -v "$1")") || die "$1 not found"
  basename "$exe" >"$PIDS/$name.exe"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  local pid=$! i
  echo "$pid" >"$PIDS/$name.pid"
  # Until the forked shell has exec'd the daemon, /proc/PID/exe is still bash or setsid and
  # daemon_running would report it dead.
  for ((i = 0; i < 100; i++)); do
    if daemon_running "$name" || ! process_alive "$pid"; then
      break
    fi
    sleep 0.05
  done
}

# Running and not a zombie: daemons outlive the `up` that started them, so their parent is
# whatever init this machine has, which may reap them late.
process_alive() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

stop_daemon() {
  local name=$1 pid i
  if pid=$(daemon_pid "$name"); then
    log "stopping $name"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      process_alive "$pid" || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid" "$PIDS/$name.exe"
}

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds. A daemon that died
# while we wait is reported with the tail of its log instead of a bare timeout.
wait_for() {
  local timeout=$1 what=$2 daemon=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n "$daemon" ]] && ! daemon_running "$daemon"; then
      tail -n 30 "$LOGS/$daemon.log" >&2 || true
      die "$daemon exited while waiting for $what (log: $LOGS/$daemon.log)"
    fi
    ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

http_ok() { curl -fs -o /dev/null --max-time 2 "$@"; }
