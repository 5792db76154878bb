# Certificates and kubeconfigs for the cluster, made with openssl once and kept in $PKI.
# One CA signs everything; client identities follow the usual names so that the apiserver's
# default RBAC roles (system:kube-scheduler, system:node:..., system:masters) apply.

NODE_NAME=127.0.0.1  # see cluster.sh: a loopback node address keeps kubelet traffic local
APISERVER_URL=https://127.0.0.1:6443

# sign_cert NAME CN ORG EXTENSIONS: key + certificate signed by the cluster CA.
sign_cert() {
  local name=$1 cn=$2 org=$3 ext=$4
  [[ -f "$PKI/$name.crt" ]] && return 0
  local subj="/CN=$cn"
  [[ -n "$org" ]] && subj="/O=$org$subj"
  openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# write_kubeconfig FILE CERT_NAME: kubeconfig with embedded data, so it can be copied anywhere.
write_kubeconfig() {
  local file=$1 cert=$2
  cat >"$file.tmp" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: devloop-testenv
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $cert
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$cert.crt")
    client-key-data: $(base64 -w0 <"$PKI/$cert.key")
contexts:
- name: devloop-testenv
  context:
    cluster: devloop-testenv
    user: $cert
    namespace: default
current-context: devloop-testenv
YAML
  mv "$file.tmp" "$file"
}

certs_up() {
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -f "$PKI/ca.crt" ]]; then
    log "generating certificates in $PKI"
    openssl genrsa -out "$PKI/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=devloop-testenv-ca" -days 3650 -sha256 \
      -out "$PKI/ca.crt" 2>/dev/null
  fi
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
  local server="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth"
  # 10.0.0.1 is the first address of the service range: the in-cluster `kubernetes` service.
  sign_cert apiserver kube-apiserver "" "$server
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "$client"
  sign_cert admin kubernetes-admin system:masters "$client"
  sign_cert controller-manager system:kube-controller-manager "" "$client"
  sign_cert scheduler system:kube-scheduler "" "$client"
  sign_cert kubelet "system:node:$NODE_NAME" system:nodes "$client"
  # kube-proxy's user is bound to system:node-proxier by the default RBAC; CoreDNS gets the
  # read-only role real clusters give it (cluster.sh).
  sign_cert kube-proxy system:kube-proxy "" "$client"
  sign_cert coredns system:coredns "" "$client"
  sign_cert kubelet-serving "$NODE_NAME" "" "$server
subjectAltName=IP:127.0.0.1,DNS:localhost"
  # Service account tokens are signed by the apiserver and verified with the public half.
  if [[ ! -f "$PKI/sa.key" ]]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  fi
  [[ -f "$KUBECONFIG_ADMIN" ]] || write_kubeconfig "$KUBECONFIG_ADMIN" admin
  local name
  for name in controller-manager scheduler kubelet kube-proxy coredns; do
    [[ -f "$CONF/$name.kubeconfig" ]] || write_kubeconfig "$CONF/$name.kubeconfig" "$name"
  done
}
