# Docker engine (Debian's docker.io) on the default socket, so the docker CLI and the Python
# docker SDK work without DOCKER_HOST.

DOCKER_SOCK=/var/run/docker.sock

docker_ready() { docker -H "unix://$DOCKER_SOCK" version >/dev/null 2>&1; }

docker_up() {
  if docker_ready; then
    return 0  # ours from an earlier `up`, or an engine someone else runs: use it either way
  fi
  local args=(--host "unix://$DOCKER_SOCK")
  # overlay2 needs the overlay filesystem; VMs without kernel modules may not have it built in,
  # and vfs (full copies per layer) always works, only slower.
  if grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null; then
    args+=(--storage-driver overlay2)
  else
    log "no overlay filesystem in this kernel: docker uses the vfs storage driver"
    args+=(--storage-driver vfs)
  fi
  # Containers (and `RUN` steps of `docker build`) reach the network through dockerd's NAT
  # rules. Without a working iptables NAT table they cannot, but the engine still runs.
  if ! iptables -t nat -S >/dev/null 2>&1; then
    log "iptables NAT unusable: dockerd runs with --iptables=false, containers have no network"
    args+=(--iptables=false --ip-masq=false)
  fi
  start_daemon dockerd dockerd "${args[@]}"
  wait_for 60 "the docker engine" dockerd docker_ready
}

docker_down() { stop_daemon dockerd; }

docker_status() {
  if daemon_running dockerd; then
    echo "docker:     running (pid $(daemon_pid dockerd), $DOCKER_SOCK)"
  elif docker_ready; then
    echo "docker:     running (not started by testenv), $DOCKER_SOCK"
  else
    echo "docker:     stopped"
  fi
}
