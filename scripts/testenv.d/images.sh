# Base images, built locally because no public registry is reachable: pause (for pod
# sandboxes), busybox, debian:bookworm(-slim), python:3.11(-slim), golang (a Go toolchain
# from the module proxy), node (Debian's nodejs), openjdk (Debian's openjdk-17), and
# BuildKit's Dockerfile frontend for `# syntax=` lines. Each is built only when its tag is
# missing in the engine, so a warm `up` costs a few `docker image inspect` calls.
#
# Every tag states only what the image contains: version tags are read from the built
# image itself (`go version`, `node --version`, `java -version`), never assumed.

# The legacy builder behaves the same with every docker CLI version and is what the Python
# docker SDK uses as well.
export DOCKER_BUILDKIT=0

IMAGES="$CACHE/images"
DEBIAN_SUITE=bookworm

# The pause version matching the Kubernetes release, from its own build/pause/Makefile.
k8s_source_dir() {
  find "$CACHE/gomod/k8s.io" -maxdepth 1 -name "kubernetes@${K8S_VERSION:-v*}" 2>/dev/null | sort -V | tail -n 1
}
PAUSE_TAG=$(sed -n 's/^TAG ?= *//p' "$(k8s_source_dir)/build/pause/Makefile" 2>/dev/null || true)
PAUSE_TAG=${PAUSE_TAG:-3.10}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

registry_has() {
  http_ok -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
    "http://127.0.0.1:5000/v2/$1/manifests/$2"
}

# push_local NAME TAG: make NAME:TAG pullable by the cluster as localhost:5000/NAME:TAG.
push_local() {
  local name=$1 tag=$2
  registry_has "$name" "$tag" && return 0
  docker tag "$name:$tag" "$REGISTRY_HOST/$name:$tag"
  docker push "$REGISTRY_HOST/$name:$tag" >>"$LOGS/images.log" 2>&1 \
    || die "docker push $REGISTRY_HOST/$name:$tag failed, see $LOGS/images.log"
}

# build_image CONTEXT_DIR TAG...: docker build with all tags, output in images.log.
build_image() {
  local context=$1; shift
  local tags=() tag
  for tag in "$@"; do tags+=(-t "$tag"); done
  log "building image $1"
  docker build "${tags[@]}" "$context" >>"$LOGS/images.log" 2>&1 \
    || die "docker build of $1 failed, see $LOGS/images.log"
}

pause_image() {
  if ! image_exists "pause:$PAUSE_TAG"; then
    local dir="$IMAGES/pause" src
    rm -rf "$dir" && mkdir -p "$dir"
    src="$(k8s_source_dir)/build/pause/linux/pause.c"
    if command -v gcc >/dev/null && [[ -f "$src" ]] \
      && gcc -Os -static -o "$dir/pause" "$src" 2>>"$LOGS/images.log"; then
      # The real pause: reaps zombies and exits on SIGTERM/SIGINT.
      printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' \
        >"$dir/Dockerfile"
    else
      log "no gcc or pause.c: pause image falls back to busybox sleep"
      cp "$(command -v busybox)" "$dir/busybox"
      printf 'FROM scratch\nCOPY busybox /busybox\nENTRYPOINT ["/busybox", "sleep", "2147483647"]\n' \
        >"$dir/Dockerfile"
    fi
    build_image "$dir" "pause:$PAUSE_TAG"
  fi
  push_local pause "$PAUSE_TAG"
}

busybox_image() {
  if ! image_exists busybox:latest; then
    local dir="$IMAGES/busybox"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$(command -v busybox)" "$dir/busybox"  # Debian's busybox-static: no libraries needed
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
      >"$dir/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/group"
    cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
COPY passwd group /etc/
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN mkdir -p /root /var/www /usr/bin /sbin /usr/sbin && mkdir -m 1777 /tmp
CMD ["sh"]
DOCKERFILE
    build_image "$dir" busybox:latest
  fi
  push_local busybox latest
}

# The host's Debian mirror from its apt configuration (the only one reachable here).
debian_mirror() {
  local uri
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
    | awk -v s="$DEBIAN_SUITE" '$2 == s {print $1; exit}')
  if [[ -z "$uri" ]]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
      2>/dev/null | grep -v '^\s*#' | grep -oE '(https?|ftp)://[^ ]+/debian/?' | head -n 1)
  fi
  [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list(.d)"
  echo "${uri%/}"
}

debian_security_mirror() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
    | awk -v s="$DEBIAN_SUITE-security" '$2 == s {sub(/\/$/, "", $1); print $1; exit}'
}

# debootstrap once; the rootfs tarball is kept so later builds only replay `docker import`.
debian_rootfs() {
  local tarball="$IMAGES/debian-$DEBIAN_SUITE-minbase.tar.gz"
  if [[ ! -f "$tarball" ]]; then
    local mirror root="$IMAGES/debian-rootfs"
    mirror=$(debian_mirror)
    log "debootstrap $DEBIAN_SUITE from $mirror (once; cached in $tarball)"
    rm -rf "$root"
    debootstrap --variant=minbase --include=ca-certificates "$DEBIAN_SUITE" "$root" "$mirror" \
      >>"$LOGS/images.log" 2>&1 || die "debootstrap failed, see $LOGS/images.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" --numeric-owner -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
  fi
  echo "$tarball"
}

debian_image() {
  image_exists "debian:$DEBIAN_SUITE-slim" && return 0
  local tarball dir="$IMAGES/debian" mirror security
  tarball=$(debian_rootfs)
  docker import "$tarball" "devloop-testenv/debian-rootfs:$DEBIAN_SUITE" >/dev/null
  rm -rf "$dir" && mkdir -p "$dir/ca"
  mirror=$(debian_mirror)
  security=$(debian_security_mirror || true)
  {
    echo "deb $mirror $DEBIAN_SUITE main"
    echo "deb $mirror $DEBIAN_SUITE-updates main"
    [[ -n "$security" ]] && echo "deb $security $DEBIAN_SUITE-security main"
  } >"$dir/sources.list"
  # Containers reach the same mirrors as the host, through the same TLS-intercepting proxy if
  # there is one, so they trust the extra CAs the host trusts.
  cp /usr/local/share/ca-certificates/*.crt "$dir/ca/" 2>/dev/null || true
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM devloop-testenv/debian-rootfs:$DEBIAN_SUITE
COPY sources.list /etc/apt/sources.list
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV LANG=C.UTF-8
CMD ["bash"]
DOCKERFILE
  build_image "$dir" "debian:$DEBIAN_SUITE-slim" "debian:$DEBIAN_SUITE"
}

python_image() {
  image_exists python:3.11-slim && return 0
  local dir="$IMAGES/python"
  rm -rf "$dir" && mkdir -p "$dir"
  # Debian's python3 is 3.11 on bookworm. Removing EXTERNALLY-MANAGED (PEP 668) lets
  # `pip install` work as it does in the official python images.
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM debian:$DEBIAN_SUITE-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv python-is-python3 \\
 && rm -rf /var/lib/apt/lists/* \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && python3 --version | grep -q '^Python 3\.11\.'
CMD ["python3"]
DOCKERFILE
  build_image "$dir" python:3.11-slim python:3.11
}

# Pods that resolve names need a dynamically linked libc: busybox-static's wget and ping
# crash on a DNS lookup (static glibc cannot load its NSS modules). Tests use python.
python_pushed() { push_local python 3.11-slim; }

# The Go toolchain of the image: the go command's own distribution, served by the module
# proxy as golang.org/toolchain (what GOTOOLCHAIN downloads), unpacked into /usr/local/go.
GO_IMAGE_VERSION="${GO_IMAGE_VERSION:-1.26.8}"

golang_image() {
  image_exists "golang:$GO_IMAGE_VERSION-$DEBIAN_SUITE" && return 0
  local dir="$IMAGES/golang" module_dir
  module_dir=$(GOMODCACHE="$CACHE/gomod" GOTOOLCHAIN=local GOFLAGS= go mod download -json \
    "golang.org/toolchain@v0.0.1-go$GO_IMAGE_VERSION.linux-amd64" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -f "$module_dir/bin/go" ]] || die "cannot download the Go $GO_IMAGE_VERSION toolchain module"
  rm -rf "$dir" && mkdir -p "$dir"
  cp -a "$module_dir" "$dir/go"
  # Module zips keep no file modes: make the commands executable again, as the go command
  # does when it switches to a downloaded toolchain.
  chmod -R u+w "$dir/go"
  chmod 0755 "$dir/go/bin/"* "$dir/go/pkg/tool/"*/*
  # As the official image: gcc and libc headers for cgo, git for modules from VCS, and
  # GOTOOLCHAIN=local so a go.mod asking for a newer Go fails instead of downloading one.
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM debian:$DEBIAN_SUITE
RUN apt-get update \\
 && apt-get install -y --no-install-recommends gcc libc6-dev make git pkg-config \\
 && rm -rf /var/lib/apt/lists/*
COPY go /usr/local/go
ENV GOLANG_VERSION=$GO_IMAGE_VERSION GOTOOLCHAIN=local GOPATH=/go
ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go \\
 && go version | grep -q " go$GO_IMAGE_VERSION "
WORKDIR /go
DOCKERFILE
  local minor=${GO_IMAGE_VERSION%.*}
  build_image "$dir" "golang:$GO_IMAGE_VERSION-$DEBIAN_SUITE" "golang:$GO_IMAGE_VERSION" \
    "golang:$minor-$DEBIAN_SUITE" "golang:$minor"
  rm -rf "$dir/go"
}

# tag_versions IMAGE VERSION SUFFIXES NAME: tag IMAGE as NAME:<v> for every leading part of
# VERSION (18, 18.20, 18.20.4), each followed by every suffix ("-" for none).
tag_versions() {
  local image=$1 version=$2 name=$4 suffix v="" part
  read -r -a suffixes <<<"$3"
  IFS=. read -r -a parts <<<"$version"
  for part in "${parts[@]}"; do
    v=${v:+$v.}$part
    for suffix in "${suffixes[@]}"; do
      [[ "$suffix" == - ]] && suffix=""
      docker tag "$image" "$name:$v$suffix"
    done
  done
}

node_image() {
  local marker="devloop-testenv/node:$DEBIAN_SUITE"
  image_exists "$marker" && return 0
  local dir="$IMAGES/node" version
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM debian:$DEBIAN_SUITE-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends nodejs npm \\
 && rm -rf /var/lib/apt/lists/*
CMD ["node"]
DOCKERFILE
  # Built under a working tag; the marker tag is only set once every version tag is.
  build_image "$dir" "$marker-build"
  version=$(docker run --rm "$marker-build" node --version) || die "node --version failed"
  version=${version#v}
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "unexpected node version '$version'"
  tag_versions "$marker-build" "$version" "- -slim -$DEBIAN_SUITE -$DEBIAN_SUITE-slim" node
  docker tag "$marker-build" "$marker"
  docker rmi "$marker-build" >/dev/null
}

openjdk_image() {
  local marker="devloop-testenv/openjdk:$DEBIAN_SUITE"
  image_exists "$marker" && return 0
  local dir="$IMAGES/openjdk" version
  rm -rf "$dir" && mkdir -p "$dir"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM debian:$DEBIAN_SUITE-slim
RUN mkdir -p /usr/share/man/man1 \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends openjdk-17-jdk-headless \\
 && rm -rf /var/lib/apt/lists/*
ENV JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
CMD ["jshell"]
DOCKERFILE
  build_image "$dir" "$marker-build"
  # `java -version` prints e.g. openjdk version "17.0.21.1" 2026-01-20 on stderr.
  version=$(docker run --rm "$marker-build" java -version 2>&1 | sed -n 's/.*version "\([0-9.]*\)".*/\1/p')
  [[ "$version" =~ ^17(\.[0-9]+)+$ ]] || die "unexpected java version '$version'"
  tag_versions "$marker-build" "$version" \
    "- -jdk -jdk-slim -jdk-$DEBIAN_SUITE -jdk-slim-$DEBIAN_SUITE" openjdk
  # Eclipse Temurin is the usual name for an OpenJDK build in Dockerfiles; this one is
  # Debian's build of the same OpenJDK release (README says so).
  tag_versions "$marker-build" "$version" "- -jdk" eclipse-temurin
  docker tag "$marker-build" "$marker"
  docker rmi "$marker-build" >/dev/null
}

# BuildKit's Dockerfile frontend, the image a `# syntax=docker/dockerfile:1` line names.
# Tagged with the frontend's own version (1.<minor>, from its source) and as :1.
dockerfile_frontend_image() {
  local dir="$CACHE/tools/dockerfile-frontend" version
  version=$(<"$dir/frontend-version")
  image_exists "docker/dockerfile:$version" && return 0
  cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
LABEL moby.buildkit.frontend.network.none="true"
LABEL moby.buildkit.frontend.caps="moby.buildkit.frontend.inputs,moby.buildkit.frontend.subrequests,moby.buildkit.frontend.contexts"
COPY dockerfile-frontend /bin/dockerfile-frontend
ENTRYPOINT ["/bin/dockerfile-frontend"]
DOCKERFILE
  printf '*\n!dockerfile-frontend\n' >"$dir/.dockerignore"
  build_image "$dir" "docker/dockerfile:$version" "docker/dockerfile:1"
}

images_up() {
  mkdir -p "$IMAGES"
  pause_image
  busybox_image
  debian_image
  python_image
  python_pushed
  dockerfile_frontend_image
  golang_image
  node_image
  openjdk_image
}

images_status() {
  local name
  for name in docker/dockerfile golang node openjdk eclipse-temurin; do
    printf '%-24s %s\n' "image $name:" "$(docker image ls --format '{{.Tag}}' "$name" 2>/dev/null \
      | sort -V | tr '\n' ' ')"
  done
}
