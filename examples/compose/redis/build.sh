#!/bin/sh
# Build Redis from Debian's package and tag it with the version it contains
# (e.g. devloop-example/redis:7.0.15), then tell devloop which ref it built.
# Usage: build.sh IMAGE_NAME
set -eu
here=$(dirname "$0")
image=$1
DOCKER_BUILDKIT=0 docker build -q -t "$image:building" "$here" >/dev/null
version=$(docker run --rm "$image:building" redis-server --version \
  | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
[ -n "$version" ] || { echo "cannot read the Redis version" >&2; exit 1; }
docker tag "$image:building" "$image:$version"
docker rmi "$image:building" >/dev/null
echo "built Redis $version"
echo "$image:$version" > "$here/.image-ref"
