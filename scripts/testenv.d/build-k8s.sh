#!/usr/bin/env bash
# Build the Kubernetes and etcd binaries of the test cluster from the Go module proxy.
#
# Kubernetes' own go.mod requires its staging modules at v0.0.0 and maps them with
# relative replaces, so `go install k8s.io/kubernetes/cmd/...@v1.x` cannot work. A small
# wrapper module requires k8s.io/kubernetes and pins every staging module to its published
# v0.<minor>.<patch>; all binaries are built in one `go build` so shared packages compile once.
# Output and the Go caches live under $DEVLOOP_TESTENV_CACHE so the cold build is paid once.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.33.13}"
ETCD_VERSION="${ETCD_VERSION:-v3.5.35}"
CACHE="${DEVLOOP_TESTENV_CACHE:-$HOME/.cache/devloop-testenv}"
BIN="$CACHE/bin"
export GOTOOLCHAIN=local
export GOMODCACHE="$CACHE/gomod"
export GOCACHE="$CACHE/gocache"
export GOFLAGS=-mod=mod
mkdir -p "$BIN"

stamp="$BIN/.built-$K8S_VERSION-$ETCD_VERSION"
# kube-proxy came later than the other binaries: a machine built before has the stamp but
# not kube-proxy, and builds only that (in the same module, so most packages are cached).
if [[ -f "$stamp" && -x "$BIN/kube-proxy" ]]; then
  exit 0
fi

minor="${K8S_VERSION#v1.}"
minor="${minor%%.*}"
staging_version="v0.${K8S_VERSION#v1.}"

if [[ ! -f "$stamp" ]]; then
  # etcd: its server module is the etcd binary's main package.
  etcd_dir="$CACHE/src/etcd"
  mkdir -p "$etcd_dir"
  cd "$etcd_dir"
  [[ -f go.mod ]] || go mod init local/etcdbuild >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/etcdctl" go.etcd.io/etcd/etcdctl/v3
fi

# Kubernetes: wrapper module with the staging replaces read from the real go.mod.
k8s_dir="$CACHE/src/k8s-$K8S_VERSION"
mkdir -p "$k8s_dir"
cd "$k8s_dir"
upstream_gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
go_line=$(awk '$1 == "go" {print $2; exit}' "$upstream_gomod")
godebug_line=$(awk '$1 == "godebug" {print; exit}' "$upstream_gomod")
{
  echo "module local/k8sbuild"
  echo
  echo "go $go_line"
  [[ -n "$godebug_line" ]] && echo "$godebug_line"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
} > go.mod
for module in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$upstream_gomod" | sort -u); do
  go mod edit -replace="$module=$module@$staging_version"
done
cat > tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
EOF
go mod tidy

build_date=$(date -u +%FT%TZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
# One invocation so packages shared by the binaries compile once. kubelet is fine without
# cgo on Linux; building everything static keeps it to a single build graph.
commands=(kube-proxy)
[[ -f "$stamp" ]] || commands+=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN/" \
  "${commands[@]/#/k8s.io/kubernetes/cmd/}"

touch "$stamp"
