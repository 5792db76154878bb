# A registry like a cloud one and a cluster seen as a developer on a shared cluster sees it.
# Sourced by scripts/testenv after common.sh and cluster.sh; every step is idempotent.
#
# The registry: Debian's docker-registry again, with TLS (a CA of its own, made once with
# openssl) and htpasswd authentication, as https://registry.devloop.test (port 443), a name in
# /etc/hosts. Its address, 192.0.2.10 (TEST-NET-1, never routed on the internet), sits on the
# loopback interface, so only this machine reaches it. It is deliberately not in 127.0.0.0/8:
# the Docker engine treats every registry there as insecure (its default insecure-registries
# range) and then skips certificate checks, so the CA would never be exercised. The engine
# trusts the CA through /etc/docker/certs.d/<host>/ca.crt and containerd through a hosts.toml
# in its config_path directory (cluster.sh); both are read at each pull or push, so neither
# daemon is restarted.
#
# The shared cluster: a kubeconfig context named like a GKE cluster
# (gke_team_europe-west1_shared) pointing at the same API server, and two developer
# namespaces, each with a service account that may do anything in its own namespace and
# nothing elsewhere (Role + RoleBinding), logged in with that service account's token.

TLS_REGISTRY_NAME="${DEVLOOP_TLS_REGISTRY_NAME:-registry.devloop.test}"
TLS_REGISTRY_ADDR="${DEVLOOP_TLS_REGISTRY_ADDR:-192.0.2.10}"
TLS_REGISTRY_DIR="$CACHE/registry-tls"
TLS_REGISTRY_USER=devloop
SHARED_DIR="$CACHE/shared-cluster"
SHARED_CONTEXT=gke_team_europe-west1_shared
SHARED_DEVELOPERS=(alice bob)
HOSTS_MARK="# devloop-testenv registry"

tls_registry_url() { echo "https://$TLS_REGISTRY_NAME/v2/"; }

# Ready means TLS verifies with our CA and the credentials are accepted.
registry_tls_ready() {
  curl -fs -o /dev/null --max-time 2 --cacert "$TLS_REGISTRY_DIR/ca.crt" \
    -u "$TLS_REGISTRY_USER:$(cat "$TLS_REGISTRY_DIR/password" 2>/dev/null)" "$(tls_registry_url)"
}

tls_registry_address_up() {
  ip -4 addr show dev lo | grep -q "inet $TLS_REGISTRY_ADDR/" \
    || ip addr add "$TLS_REGISTRY_ADDR/32" dev lo
  local line="$TLS_REGISTRY_ADDR $TLS_REGISTRY_NAME $HOSTS_MARK"
  if ! grep -qxF "$line" /etc/hosts; then
    # Rewritten in place (not replaced): /etc/hosts may be a bind mount.
    local kept
    kept=$(grep -vF "$HOSTS_MARK" /etc/hosts || true)
    printf '%s\n%s\n' "$kept" "$line" >/etc/hosts
  fi
}

tls_registry_certs() {
  local dir=$TLS_REGISTRY_DIR
  if [[ ! -f "$dir/ca.crt" ]]; then
    log "generating the TLS registry's CA in $dir"
    openssl genrsa -out "$dir/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=devloop-testenv registry CA" \
      -days 3650 -sha256 -out "$dir/ca.crt" 2>/dev/null
    rm -f "$dir/server.crt"
  fi
  if [[ ! -f "$dir/server.crt" ]]; then
    openssl genrsa -out "$dir/server.key" 2048 2>/dev/null
    openssl req -new -key "$dir/server.key" -subj "/CN=$TLS_REGISTRY_NAME" \
      -out "$dir/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" "subjectAltName=DNS:$TLS_REGISTRY_NAME" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$dir/server.ext" -out "$dir/server.crt" \
      2>/dev/null
    rm -f "$dir/server.csr" "$dir/server.ext"
  fi
}

# The password is random, made once; the htpasswd entry is bcrypt (the only hash the
# registry accepts): Debian's htpasswd when apache2-utils is there, else Python's crypt,
# which uses libxcrypt's bcrypt on Debian 12. Cost 5 (htpasswd's default): the registry
# checks the hash on every request of a push, and Python's default cost 12 made a 300 KB
# push take 5 s here. The registry reads the file when it starts: a new one restarts it.
tls_registry_htpasswd() {
  local dir=$TLS_REGISTRY_DIR
  if [[ ! -s "$dir/password" ]]; then
    (umask 077 && openssl rand -hex 12 >"$dir/password")
    rm -f "$dir/htpasswd"
  fi
  grep -q ':\$2[aby]\$05\$' "$dir/htpasswd" 2>/dev/null && return 0
  if command -v htpasswd >/dev/null; then
    htpasswd -Bbn -C 5 "$TLS_REGISTRY_USER" "$(cat "$dir/password")" | sed '/^$/d' \
      >"$dir/htpasswd"
  else
    python3 -W ignore -c 'import crypt, sys
print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))' \
      "$TLS_REGISTRY_USER" "$(cat "$dir/password")" >"$dir/htpasswd"
  fi
  grep -q ':\$2[aby]\$05\$' "$dir/htpasswd" || die "no bcrypt htpasswd entry could be made"
  stop_daemon registry-tls
}

# Both daemons read these at each pull/push: no restart.
tls_registry_trust() {
  local docker_dir="/etc/docker/certs.d/$TLS_REGISTRY_NAME"
  mkdir -p "$docker_dir"
  cmp -s "$TLS_REGISTRY_DIR/ca.crt" "$docker_dir/ca.crt" \
    || install -m 0644 "$TLS_REGISTRY_DIR/ca.crt" "$docker_dir/ca.crt"
  local ctr_dir="$CONF/certs.d/$TLS_REGISTRY_NAME"
  mkdir -p "$ctr_dir"
  cat >"$ctr_dir/hosts.toml.new" <<TOML
server = "https://$TLS_REGISTRY_NAME"

[host."https://$TLS_REGISTRY_NAME"]
  capabilities = ["pull", "resolve"]
  ca = "$TLS_REGISTRY_DIR/ca.crt"
TOML
  if cmp -s "$ctr_dir/hosts.toml.new" "$ctr_dir/hosts.toml"; then
    rm -f "$ctr_dir/hosts.toml.new"
  else
    mv "$ctr_dir/hosts.toml.new" "$ctr_dir/hosts.toml"
  fi
}

registry_tls_up() {
  mkdir -p "$TLS_REGISTRY_DIR/data"
  chmod 700 "$TLS_REGISTRY_DIR"
  tls_registry_address_up
  tls_registry_certs
  tls_registry_htpasswd
  tls_registry_trust
  # A fixed http.secret: uploads survive a registry restart between chunks.
  [[ -s "$TLS_REGISTRY_DIR/http-secret" ]] \
    || (umask 077 && openssl rand -hex 16 >"$TLS_REGISTRY_DIR/http-secret")
  cat >"$CONF/registry-tls.yml.new" <<YAML
version: 0.1
log:
  level: warn
  fields:
    service: registry-tls
storage:
  filesystem:
    rootdirectory: $TLS_REGISTRY_DIR/data
  delete:
    enabled: true
auth:
  htpasswd:
    realm: devloop-testenv
    path: $TLS_REGISTRY_DIR/htpasswd
http:
  addr: $TLS_REGISTRY_ADDR:443
  secret: $(cat "$TLS_REGISTRY_DIR/http-secret")
  tls:
    certificate: $TLS_REGISTRY_DIR/server.crt
    key: $TLS_REGISTRY_DIR/server.key
  headers:
    X-Content-Type-Options: [nosniff]
YAML
  replace_config registry-tls "$CONF/registry-tls.yml"
  chmod 600 "$CONF/registry-tls.yml"
  start_daemon registry-tls docker-registry serve "$CONF/registry-tls.yml"
  wait_for 30 "the TLS registry on $TLS_REGISTRY_NAME" registry-tls registry_tls_ready
}

registry_tls_down() { stop_daemon registry-tls; }

registry_tls_status() {
  if registry_tls_ready; then
    echo "registry-tls: running on $TLS_REGISTRY_NAME ($TLS_REGISTRY_ADDR:443, TLS + htpasswd, pid $(daemon_pid registry-tls || echo 'not ours'))"
  else
    echo "registry-tls: stopped"
  fi
  if [[ -f "$SHARED_DIR/alice.kubeconfig" ]]; then
    echo "shared cluster: context $SHARED_CONTEXT, namespaces ${SHARED_DEVELOPERS[*]/#/devloop-dev-} ($SHARED_DIR)"
  fi
}

# One developer: namespace devloop-dev-NAME, service account `developer` with every right
# in that namespace only, a long-lived token (a service-account-token Secret, filled in by the
# token controller) and a kubeconfig whose only context is the GKE-like one.
shared_developer_up() {
  local who=$1 namespace="devloop-dev-$1"
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $namespace
  labels: {devloop-testenv/shared-cluster: "true"}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: developer, namespace: $namespace}
---
apiVersion: v1
kind: Secret
metadata:
  name: developer-token
  namespace: $namespace
  annotations: {kubernetes.io/service-account.name: developer}
type: kubernetes.io/service-account-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: developer, namespace: $namespace}
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: developer, namespace: $namespace}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: developer}
subjects:
- {kind: ServiceAccount, name: developer, namespace: $namespace}
YAML
  local token="" i
  for ((i = 0; i < 60; i++)); do
    token=$(kubectl_admin get secret developer-token -n "$namespace" \
      -o jsonpath='{.data.token}' 2>/dev/null | base64 -d) && [[ -n "$token" ]] && break
    sleep 0.5
  done
  [[ -n "$token" ]] || die "no token for the service account developer in $namespace"
  local file="$SHARED_DIR/$who.kubeconfig"
  (umask 077 && cat >"$file.tmp" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: $SHARED_CONTEXT
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $who-developer
  user:
    token: $token
contexts:
- name: $SHARED_CONTEXT
  context:
    cluster: $SHARED_CONTEXT
    user: $who-developer
    namespace: $namespace
current-context: $SHARED_CONTEXT
YAML
  )
  mv "$file.tmp" "$file"
}

shared_cluster_up() {
  mkdir -p "$SHARED_DIR"
  chmod 700 "$SHARED_DIR"
  local who
  for who in "${SHARED_DEVELOPERS[@]}"; do
    shared_developer_up "$who"
  done
}

registry_tls_env() {
  printf 'export DEVLOOP_TLS_REGISTRY=%q\n' "$TLS_REGISTRY_NAME"
  printf 'export DEVLOOP_TLS_REGISTRY_USER=%q\n' "$TLS_REGISTRY_USER"
  printf 'export DEVLOOP_TLS_REGISTRY_PASSWORD=%q\n' "$(cat "$TLS_REGISTRY_DIR/password" 2>/dev/null)"
  printf 'export DEVLOOP_TLS_REGISTRY_CA=%q\n' "$TLS_REGISTRY_DIR/ca.crt"
  printf 'export DEVLOOP_SHARED_CONTEXT=%q\n' "$SHARED_CONTEXT"
  local who upper
  for who in "${SHARED_DEVELOPERS[@]}"; do
    upper=${who^^}
    printf 'export DEVLOOP_SHARED_KUBECONFIG_%s=%q\n' "$upper" "$SHARED_DIR/$who.kubeconfig"
    printf 'export DEVLOOP_SHARED_NAMESPACE_%s=%q\n' "$upper" "devloop-dev-$who"
  done
}
