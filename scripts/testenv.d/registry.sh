# Local image registry (Debian's docker-registry, distribution v2) on 127.0.0.1:5000: plain
# HTTP and no auth, which is what kind/ctlptl-style local registries look like to devloop.
# Docker treats 127.0.0.0/8 registries as insecure by default, so no daemon config is needed.

registry_ready() { http_ok "http://127.0.0.1:5000/v2/"; }

registry_up() {
  if registry_ready; then
    return 0
  fi
  mkdir -p "$CACHE/registry/data"
  # Own config instead of /etc/docker/registry/config.yml: Debian's enables htpasswd auth and
  # listens on all interfaces.
  cat >"$CONF/registry.yml" <<YAML
version: 0.1
log:
  level: warn
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $CACHE/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  start_daemon registry docker-registry serve "$CONF/registry.yml"
  wait_for 30 "the registry on 127.0.0.1:5000" registry registry_ready
}

registry_down() { stop_daemon registry; }

registry_status() {
  if registry_ready; then
    echo "registry:   running on $REGISTRY_HOST (pid $(daemon_pid registry || echo 'not ours'))"
  else
    echo "registry:   stopped"
  fi
}
