# The tools users have next to Docker and Kubernetes: the buildx CLI plugin, helm, CoreDNS
# (run by cluster.sh) and BuildKit's Dockerfile frontend (made into an image by images.sh),
# all built from the Go module proxy by build-tools.sh, once per machine.

# Where the docker CLI looks for plugins on every machine (the compose plugin goes there too).
PLUGIN_DIR="${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"

tools_up() {
  if ! DEVLOOP_TESTENV_CACHE="$CACHE" bash "$HERE/testenv.d/build-tools.sh" --check 2>/dev/null; then
    command -v go >/dev/null || die "no Go toolchain to build buildx, helm and CoreDNS with"
    log "building buildx, the Dockerfile frontend, helm and CoreDNS (once; log: $LOGS/build-tools.log)"
  fi
  DEVLOOP_TESTENV_CACHE="$CACHE" nice -n 10 bash "$HERE/testenv.d/build-tools.sh" \
    >>"$LOGS/build-tools.log" 2>&1 || die "building the tools failed, see $LOGS/build-tools.log"
  # Copied rather than linked, so the plugin still works if the cache dir is removed.
  mkdir -p "$PLUGIN_DIR"
  if ! cmp -s "$CACHE/tools/cli-plugins/docker-buildx" "$PLUGIN_DIR/docker-buildx"; then
    install -m 0755 "$CACHE/tools/cli-plugins/docker-buildx" "$PLUGIN_DIR/docker-buildx"
  fi
}

tools_status() {
  local buildx frontend
  buildx=$(docker buildx version 2>/dev/null || echo "not installed")
  frontend=$(cat "$CACHE/tools/dockerfile-frontend/frontend-version" 2>/dev/null || echo "?")
  echo "buildx:     $buildx"
  echo "frontend:   docker/dockerfile:$frontend ($(cat "$CACHE/tools/dockerfile-frontend/dockerfile-frontend.version" 2>/dev/null || echo "not built"))"
  echo "helm:       $("$BIN/helm" version --short 2>/dev/null || echo "not installed")"
  echo "coredns:    $("$BIN/coredns" -version 2>/dev/null | head -n 1 || echo "not installed")"
  echo "kube-proxy: $("$BIN/kube-proxy" --version 2>/dev/null || echo "not installed")"
}
