#!/usr/bin/env bash
# Build the `docker compose` CLI plugin from the Go module proxy and install it for the docker CLI.
#
# v2.40 is the newest line whose Docker client still negotiates down to the test engine's
# API 1.41 (Debian's docker.io 20.10); v5 uses the moby v29 client, which needs API 1.44.
# Compose's go.mod has exclude directives, which `go install module@version` refuses, so the
# plugin is built inside the downloaded module itself, where that go.mod is the main module
# and go.sum pins every dependency exactly as Compose's own release build does.
# The binary is kept under $DEVLOOP_TESTENV_CACHE (built once per machine) and copied into the
# CLI plugin directory on every run, so a fresh /usr/local is repaired without a rebuild.
#
#   bash scripts/testenv.d/compose.sh            build if needed, install the plugin
#   bash scripts/testenv.d/compose.sh --version  print the installed plugin's version
set -euo pipefail

COMPOSE_VERSION="${COMPOSE_VERSION:-v2.40.3}"
CACHE="${DEVLOOP_TESTENV_CACHE:-$HOME/.cache/devloop-testenv}"
BIN="$CACHE/bin"
PLUGIN_DIR="${DOCKER_CLI_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}"
export PATH="/usr/local/go/bin:$PATH"
export GOTOOLCHAIN=local
export GOMODCACHE="$CACHE/gomod"
export GOCACHE="$CACHE/gocache"

built="$BIN/docker-compose-$COMPOSE_VERSION"

if [[ "${1:-}" == "--version" ]]; then
  if [[ -x "$PLUGIN_DIR/docker-compose" ]]; then
    "$PLUGIN_DIR/docker-compose" version --short
  else
    echo "not installed"
  fi
  exit 0
fi

if [[ ! -x "$built" ]]; then
  command -v go >/dev/null || { echo "compose.sh: no Go toolchain" >&2; exit 1; }
  mkdir -p "$BIN"
  module_dir=$(go mod download -json "github.com/docker/compose/v2@$COMPOSE_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  [[ -d "$module_dir" ]] || { echo "compose.sh: cannot download compose $COMPOSE_VERSION" >&2; exit 1; }
  cd "$module_dir"
  # The version string is what `docker compose version` prints and what compose puts in labels.
  CGO_ENABLED=0 GOFLAGS=-mod=readonly nice -n 10 go build -trimpath \
    -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
    -o "$built.tmp" ./cmd
  mv "$built.tmp" "$built"
fi

mkdir -p "$PLUGIN_DIR"
if ! cmp -s "$built" "$PLUGIN_DIR/docker-compose"; then
  install -m 0755 "$built" "$PLUGIN_DIR/docker-compose"
fi
