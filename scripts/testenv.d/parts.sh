# Stopping and starting one part of a running environment, for fault tests:
#
#   scripts/testenv stop-part NAME    stop one part `up` started (the others keep running)
#   scripts/testenv start-part NAME   start it again and wait until it serves
#
# NAME: etcd, kube-apiserver, kubelet, dockerd, registry. Pods keep running while kubelet
# is stopped (their containers belong to containerd); stopping dockerd stops its containers.
# Sourced, not executed.

PARTS=(etcd kube-apiserver kubelet dockerd registry)

part_check() {
  local name=$1 known
  for known in "${PARTS[@]}"; do
    [[ "$name" == "$known" ]] && return 0
  done
  die "unknown part '$name' (one of: ${PARTS[*]})"
}

cmd_stop_part() {
  local name=${1:-}
  [[ -n "$name" ]] || die "usage: testenv stop-part NAME (one of: ${PARTS[*]})"
  part_check "$name"
  daemon_running "$name" || die "$name is not running (or was not started by testenv up)"
  stop_daemon "$name"
}

cmd_start_part() {
  local name=${1:-}
  [[ -n "$name" ]] || die "usage: testenv start-part NAME (one of: ${PARTS[*]})"
  part_check "$name"
  mkdir -p "$LOGS" "$PIDS"
  case "$name" in
    etcd) etcd_up ;;
    kube-apiserver) apiserver_up ;;
    kubelet)
      kubelet_up
      wait_for 60 "kubelet" kubelet http_ok http://127.0.0.1:10248/healthz
      ;;
    dockerd) docker_up ;;
    registry) registry_up ;;
  esac
}
