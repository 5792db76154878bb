# Single-node Kubernetes from plain processes: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd (Debian's, own config and socket), kubelet, kube-proxy and CoreDNS.
#
# The node is named and addressed 127.0.0.1 (as upstream's hack/local-up-cluster.sh does):
# kubelet refuses a loopback --node-ip, but an IP given as hostname override becomes the node's
# InternalIP, so the apiserver reaches kubelet (logs, exec, port-forward) over loopback and every
# component can bind to 127.0.0.1.
#
# Service networking is a real cluster's: kube-proxy (iptables mode, from the same Kubernetes
# build) programs every Service's ClusterIP, and CoreDNS answers for `cluster.local` behind the
# `kube-dns` Service (10.0.0.10), which kubelet gives pods as their nameserver. CoreDNS runs as
# a process on the node like the other components, listening on the pod bridge's gateway
# address; the kube-dns Service reaches it through an EndpointSlice, as a Service in front of
# an outside endpoint does. (A CoreDNS pod would need in-cluster access to the apiserver, which
# listens on loopback only here.)

CONTAINERD_SOCK="$RUNDIR/containerd/containerd.sock"
SERVICE_CIDR=10.0.0.0/24
POD_CIDR=10.88.0.0/16
POD_BRIDGE=devloop0
POD_GATEWAY=10.88.0.1
CLUSTER_DNS=10.0.0.10
CLUSTER_DOMAIN=cluster.local

kubectl_admin() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

etcd_up() {
  mkdir -p "$STATE/etcd"
  chmod 700 "$STATE/etcd"
  # --unsafe-no-fsync: a throw-away test cluster does not need durable writes, and fsync on a
  # VM disk makes every apiserver write slow.
  start_daemon etcd etcd --name devloop --data-dir "$STATE/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster devloop=http://127.0.0.1:2380 --unsafe-no-fsync
  wait_for 60 "etcd" etcd http_ok http://127.0.0.1:2379/health
}

apiserver_up() {
  # Service accounts: the apiserver signs tokens with sa.key (TokenRequest, used by the
  # projected token volume of every pod) and verifies them with sa.pub.
  start_daemon kube-apiserver kube-apiserver \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=127.0.0.1 --secure-port=6443 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true \
    --profiling=false
  wait_for 120 "kube-apiserver" kube-apiserver kubectl_admin get --raw /readyz
}

controller_manager_up() {
  # --root-ca-file publishes the kube-root-ca.crt ConfigMap that service account token volumes
  # mount; without it pods never start. --service-account-private-key-file keeps the legacy
  # token controller happy. Leader election is pointless with a single instance.
  start_daemon kube-controller-manager kube-controller-manager \
    --kubeconfig="$CONF/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$CONF/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$CONF/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" \
    --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --profiling=false
}

scheduler_up() {
  start_daemon kube-scheduler kube-scheduler \
    --kubeconfig="$CONF/scheduler.kubeconfig" \
    --authentication-kubeconfig="$CONF/scheduler.kubeconfig" \
    --authorization-kubeconfig="$CONF/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --leader-elect=false \
    --profiling=false
}

containerd_ready() { ctr --address "$CONTAINERD_SOCK" version; }

# containerd answers on its socket before its CRI plugin has recovered the pods' state, and a
# kubelet started in that window exits with "server is not initialized yet". The CRI plugin
# logs "Start streaming server" just before it starts serving; look for it in the part of the
# log this start wrote (the log is appended to across starts).
CONTAINERD_LOG_START=0
cri_ready() {
  containerd_ready &&
    tail -c "+$((CONTAINERD_LOG_START + 1))" "$LOGS/containerd.log" |
    grep -q "Start streaming server"
}

containerd_up() {
  mkdir -p "$STATE/containerd" "$RUNDIR/containerd" "$CONF/cni" "$STATE/cni" \
    "$CONF/certs.d/$REGISTRY_HOST"
  # Pods pull from the local registry over plain HTTP (hosts.toml under config_path).
  cat >"$CONF/certs.d/$REGISTRY_HOST/hosts.toml" <<TOML
server = "http://$REGISTRY_HOST"

[host."http://$REGISTRY_HOST"]
  capabilities = ["pull", "resolve"]
TOML
  # bridge + host-local for pod addresses, portmap for hostPort, firewall so that pod traffic
  # passes the FORWARD chain (dockerd sets its policy to DROP). containerd adds the loopback
  # interface itself with the `loopback` plugin from bin_dir. Own conf_dir and IPAM dataDir so
  # nothing is written to /etc/cni or /var/lib/cni.
  cat >"$CONF/cni/10-devloop.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "devloop",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/networks",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}
JSON
  # cgroupfs (SystemdCgroup = false) to match kubelet's cgroupDriver on this cgroup v1 host.
  # restrict_oom_score_adj: kubelet asks for negative OOM scores (-998 for the pod sandbox),
  # which needs CAP_SYS_RESOURCE; sandboxed VMs and CI containers often lack it and runc then
  # fails with "can't get final child's PID from pipe". Clamp them to containerd's own score.
  # runc's state goes under $RUNDIR rather than the shared /run/containerd/runc.
  cat >"$CONF/containerd.toml" <<TOML
version = 2
root = "$STATE/containerd"
state = "$RUNDIR/containerd/state"

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$REGISTRY_HOST/pause:$PAUSE_TAG"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CONF/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
      Root = "$RUNDIR/runc"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$CONF/certs.d"
TOML
  if daemon_running containerd; then
    wait_for 60 "containerd" containerd containerd_ready
    return 0
  fi
  CONTAINERD_LOG_START=$(stat -c %s "$LOGS/containerd.log" 2>/dev/null || echo 0)
  start_daemon containerd containerd --config "$CONF/containerd.toml"
  wait_for 60 "containerd's CRI plugin" containerd cri_ready
}

kubelet_up() {
  mkdir -p "$STATE/kubelet"
  # Authorization AlwaysAllow: only loopback clients reach it, and the apiserver's client cert
  # still has to be valid (x509 authentication). Eviction thresholds are low because a test VM
  # disk is often fuller than the defaults (15% imagefs) allow.
  cat >"$CONF/kubelet.yaml.new" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: AlwaysAllow
failSwapOn: false
resolvConf: /etc/resolv.conf
clusterDNS: [$CLUSTER_DNS]
clusterDomain: $CLUSTER_DOMAIN
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 98
imageGCLowThresholdPercent: 95
serializeImagePulls: false
YAML
  # A kubelet started with an older configuration (an environment from before clusterDNS)
  # is restarted; its pods keep running.
  replace_config kubelet "$CONF/kubelet.yaml"
  start_daemon kubelet kubelet --config="$CONF/kubelet.yaml" \
    --kubeconfig="$CONF/kubelet.kubeconfig" \
    --hostname-override="$NODE_NAME" \
    --root-dir="$STATE/kubelet"
}

node_ready() {
  [[ "$(kubectl_admin get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == True ]]
}

# replace_config DAEMON FILE: move FILE.new over FILE when they differ, stopping DAEMON first
# if it runs with the old content (the caller starts it again).
replace_config() {
  local daemon=$1 file=$2
  if cmp -s "$file.new" "$file"; then
    rm -f "$file.new"
    return 0
  fi
  daemon_running "$daemon" && stop_daemon "$daemon"
  mv "$file.new" "$file"
}

# The pod bridge with its gateway address, made before the first pod so CoreDNS can listen on
# it; the CNI bridge plugin finds it and uses it as is.
pod_bridge_up() {
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge
  fi
  ip -4 addr show dev "$POD_BRIDGE" | grep -q "inet $POD_GATEWAY/" \
    || ip addr add "$POD_GATEWAY/${POD_CIDR#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
}

kube_proxy_up() {
  # conntrack.maxPerCore 0 leaves the host's conntrack table size alone; no NodePorts on
  # localhost (they need route_localnet); everything it serves binds to 127.0.0.1.
  cat >"$CONF/kube-proxy.yaml.new" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $CONF/kube-proxy.kubeconfig
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: "$NODE_NAME"
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [primary]
conntrack:
  maxPerCore: 0
iptables:
  localhostNodePorts: false
YAML
  # kube-proxy exits when its configuration file changes: rewrite it only when it differs,
  # and then restart it ourselves.
  replace_config kube-proxy "$CONF/kube-proxy.yaml"
  start_daemon kube-proxy kube-proxy --config="$CONF/kube-proxy.yaml"
  wait_for 60 "kube-proxy" kube-proxy http_ok http://127.0.0.1:10256/healthz
}

coredns_ready() { http_ok http://127.0.0.1:10055/ready; }

coredns_up() {
  # The read-only access CoreDNS's kubernetes plugin needs, as in CoreDNS's own deployment.
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:coredns
YAML
  cat >"$CONF/Corefile.new" <<COREFILE
.:53 {
    bind $POD_GATEWAY
    errors
    health 127.0.0.1:10054
    ready 127.0.0.1:10055
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $CONF/coredns.kubeconfig devloop-testenv
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
}
COREFILE
  replace_config coredns "$CONF/Corefile"
  start_daemon coredns coredns -conf "$CONF/Corefile"
  wait_for 60 "CoreDNS" coredns coredns_ready
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS}
spec:
  clusterIP: $CLUSTER_DNS
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels: {kubernetes.io/service-name: kube-dns, k8s-app: kube-dns}
addressType: IPv4
endpoints:
- addresses: ["$POD_GATEWAY"]
  conditions: {ready: true}
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
YAML
}

# KEP-1755: tools such as devloop, Tilt and Skaffold discover the local registry from this
# ConfigMap. Same content as kind's and ctlptl's.
publish_registry() {
  kubectl_admin apply -f - >/dev/null <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "$REGISTRY_HOST"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
YAML
}

cluster_up() {
  # Pods need forwarding and bridged traffic must traverse iptables (portmap, firewall).
  sysctl -qw net.ipv4.ip_forward=1
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] \
    && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  etcd_up
  apiserver_up
  controller_manager_up
  scheduler_up
  pod_bridge_up
  kube_proxy_up
  coredns_up
  containerd_up
  kubelet_up
  # After a quick down/up the Node object still says Ready from before; kubelet's own health
  # endpoint shows that this kubelet is actually running its sync loop.
  wait_for 60 "kubelet" kubelet http_ok http://127.0.0.1:10248/healthz
  wait_for 120 "node $NODE_NAME to be Ready" kubelet node_ready
  publish_registry
  # The service account controller creates `default` in each namespace; pods of a Deployment
  # are rejected until it exists.
  wait_for 60 "the default service account" kube-controller-manager \
    kubectl_admin get serviceaccount default --namespace default
}

# Stop the pods' containers before containerd: their shims and processes (which may listen in
# pod network namespaces) would otherwise outlive `down`. kubelet cleans up the sandboxes (and
# their CNI state) after the next `up`.
kill_pod_tasks() {
  containerd_ready >/dev/null 2>&1 || return 0
  local ctr=(ctr --address "$CONTAINERD_SOCK" --namespace k8s.io) task i
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill --signal SIGKILL "$task" >/dev/null 2>&1 || true
  done
  for task in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    for ((i = 0; i < 50; i++)); do
      "${ctr[@]}" tasks delete "$task" >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
}

cluster_down() {
  stop_daemon kubelet
  kill_pod_tasks
  stop_daemon containerd
  stop_daemon coredns
  stop_daemon kube-proxy
  # kubelet bind-mounts its root dir and pod volumes (service account tokens on tmpfs); leave
  # no mounts behind under the cache dir, kubelet recreates what it needs.
  findmnt -rn -o TARGET | grep "^$STATE/kubelet" | sort -r | xargs -r -n 1 umount -l
  stop_daemon kube-scheduler
  stop_daemon kube-controller-manager
  stop_daemon kube-apiserver
  stop_daemon etcd
}

cluster_status() {
  local name
  for name in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy coredns \
    containerd kubelet; do
    if daemon_running "$name"; then
      printf '%-24s running (pid %s)\n' "$name:" "$(daemon_pid "$name")"
    else
      printf '%-24s stopped\n' "$name:"
    fi
  done
  if node_ready; then
    echo "node $NODE_NAME:           Ready"
  fi
}
