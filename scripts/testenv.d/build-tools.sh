#!/usr/bin/env bash
# Build the tools users have on their machines from the Go module proxy, each pinned:
# the docker buildx CLI plugin, BuildKit's Dockerfile frontend (for `# syntax=` lines),
# helm and CoreDNS. kube-proxy comes from the Kubernetes build (build-k8s.sh).
#
# Each tool is built inside its downloaded module, where its own go.mod is the main module and
# go.sum pins every dependency exactly as its release build does (`go install module@version`
# refuses BuildKit's, which has exclude directives), with its version stamped the way its
# release build does. The Go caches are shared with the Kubernetes build, so common
# dependencies (grpc, protobuf, the docker client...) compile once per machine.
# Usage: build-tools.sh [--check] [NAME...] (default: all); --check only tells (exit status)
# whether everything is built already.
set -euo pipefail

BUILDX_VERSION="${BUILDX_VERSION:-v0.38.2}"
BUILDKIT_VERSION="${BUILDKIT_VERSION:-v0.34.2}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
CACHE="${DEVLOOP_TESTENV_CACHE:-$HOME/.cache/devloop-testenv}"
BIN="$CACHE/bin"
TOOLS="$CACHE/tools"
export GOTOOLCHAIN=local
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$CACHE/gomod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$CACHE/gocache}"
export GOFLAGS=-trimpath
export CGO_ENABLED=0
mkdir -p "$BIN" "$TOOLS"

check=false
if [[ "${1:-}" == --check ]]; then
  check=true
  shift
fi

# module_dir MODULE@VERSION: download the module (once) and print its directory.
module_dir() {
  go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

# build NAME MODULE VERSION OUT PACKAGE_DIR [LDFLAGS [TAGS]]: skip when OUT has the stamp.
build() {
  local name=$1 module=$2 version=$3 out=$4 pkg=$5 ldflags=${6:-} tags=${7:-}
  local stamp="$out.version"
  if [[ -x "$out" && -f "$stamp" && "$(<"$stamp")" == "$version" ]]; then
    return 0
  fi
  $check && exit 1
  echo "== $name $version" >&2
  local start=$SECONDS dir
  dir=$(module_dir "$module@$version")
  [[ -d "$dir" ]] || { echo "cannot download $module@$version" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  (cd "$dir" && GOFLAGS="$GOFLAGS -mod=readonly" go build -ldflags "-s -w $ldflags" \
    ${tags:+-tags "$tags"} -o "$out.tmp" "./$pkg")
  mv "$out.tmp" "$out"
  echo "$version" >"$stamp"
  echo "== $name built in $((SECONDS - start))s" >&2
}

buildx() {
  build buildx github.com/docker/buildx "$BUILDX_VERSION" "$TOOLS/cli-plugins/docker-buildx" \
    cmd/buildx \
    "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
}

# The frontend runs inside BuildKit as the entrypoint of an image (see images.sh), so it
# must be static: the build tags are the ones its release Dockerfile uses.
dockerfile_frontend() {
  local pkg=frontend/dockerfile/cmd/dockerfile-frontend
  build dockerfile-frontend github.com/moby/buildkit "$BUILDKIT_VERSION" \
    "$TOOLS/dockerfile-frontend/dockerfile-frontend" "$pkg" \
    "-X main.Version=buildkit-$BUILDKIT_VERSION -X main.Package=github.com/moby/buildkit/$pkg" \
    "netgo static_build osusergo"
  $check && return 0
  # The frontend's own version (major.minor), which `# syntax=docker/dockerfile:1.N` names.
  sed -n 's/^const version = "\(.*\)"$/\1/p' \
    "$GOMODCACHE/github.com/moby/buildkit@$BUILDKIT_VERSION/frontend/dockerfile/version/version.go" \
    >"$TOOLS/dockerfile-frontend/frontend-version"
}

helm() {
  build helm helm.sh/helm/v3 "$HELM_VERSION" "$BIN/helm" cmd/helm \
    "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
}

coredns() {
  build coredns github.com/coredns/coredns "$COREDNS_VERSION" "$BIN/coredns" .
}

tools=("$@")
((${#tools[@]})) || tools=(buildx dockerfile_frontend helm coredns)
for tool in "${tools[@]}"; do
  "$tool"
done
