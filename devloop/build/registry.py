"""Where built images go: registry discovery and the names images are pushed and pulled by.

Discovery follows Tilt: the cluster advertises its local registry in the
`local-registry-hosting` ConfigMap of `kube-public` (KEP-1755, key
`localRegistryHosting.v1`). When the cluster advertises one it wins over the Tiltfile's
`default_registry()` (Tilt logs "Default registry specified, but will be ignored in favor of
auto-detected registry"); otherwise `default_registry()` is used; with neither, images keep
their own names. On a context that is not a local cluster `default_registry()` wins (see
`choose_registry`).

Naming follows Tilt's `ReplaceRegistryForLocalRef`: the image's familiar name (no
`docker.io/library/`) has `/`, `:` and `@` replaced by `_` and is put under the registry
host, e.g. `gcr.io/foo/bar` -> `localhost:5000/gcr.io_foo_bar`. A name already under the
registry is kept. With `single_name` every image goes to `<host>/<single_name>` and the
escaped image name moves into the tag. The cluster pulls through `hostFromContainerRuntime`
when the ConfigMap gives one.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from devloop.model import plan

CONFIGMAP_NAMESPACE = "kube-public"
CONFIGMAP_NAME = "local-registry-hosting"
CONFIGMAP_KEY = "localRegistryHosting.v1"

_ESCAPE = re.compile(r"[/:@]")

# Kube contexts whose cluster runs its containers on the local Docker engine, so an image
# built there is already visible to the kubelet and needs no push (Tilt's "cluster uses the
# local docker" rule; minikube's and kind's own image loading are out of scope).
SHARED_ENGINE_CONTEXTS = frozenset(
    {"docker-desktop", "docker-for-desktop", "desktop-linux", "rancher-desktop", "orbstack"}
)


class ConfigMapReader(Protocol):
    """The part of the Kubernetes seam registry discovery needs."""

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Registry:
    """A registry to push to (`host`) and the host the cluster's runtime pulls from."""

    host: str
    host_from_container_runtime: str = ""
    host_from_cluster_network: str = ""
    single_name: str = ""
    help: str = ""

    @property
    def runtime_host(self) -> str:
        return self.host_from_container_runtime or self.host


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: `name[:tag][@digest]`."""

    name: str
    tag: str = ""
    digest: str = ""

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def parse_ref(ref: str) -> ImageRef:
    """Split a reference; a `:` after the last `/` starts the tag (a port comes before)."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    if not name:
        raise ValueError(f"invalid image reference {ref!r}")
    return ImageRef(name=name, tag=tag, digest=digest)


def familiar_name(name: str) -> str:
    """Docker's short form: `docker.io/library/busybox` -> `busybox`."""
    for prefix in ("docker.io/library/", "index.docker.io/library/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def escape_name(name: str) -> str:
    return _ESCAPE.sub("_", name)


def _replace(host: str, name: str, single_name: str) -> str:
    familiar = familiar_name(name)
    if not host or familiar.startswith(host + "/"):
        return familiar
    return f"{host}/{single_name or escape_name(familiar)}"


def local_name(ref: str, registry: Registry | None) -> str:
    """The repository (no tag) this machine pushes `ref` to."""
    name = parse_ref(ref).name
    return _replace(registry.host, name, registry.single_name) if registry else familiar_name(name)


def cluster_name(ref: str, registry: Registry | None) -> str:
    """The repository (no tag) the cluster's container runtime pulls `ref` from."""
    name = parse_ref(ref).name
    if not registry:
        return familiar_name(name)
    return _replace(registry.runtime_host, name, registry.single_name)


def tag_for(ref: str, suffix: str, registry: Registry | None) -> str:
    """The tag for a build result; with `single_name` the image's name is part of it."""
    if registry and registry.single_name:
        base = posixpath.basename(familiar_name(parse_ref(ref).name))
        return f"{escape_name(base)}-{suffix}"
    return suffix


def replace_registry(ref: str, registry: Registry | None) -> str:
    """`ref` renamed into the registry as seen from this machine, keeping its tag."""
    parsed = parse_ref(ref)
    return str(ImageRef(local_name(ref, registry), parsed.tag, parsed.digest))


def cluster_ref_for_local(local_ref: str, registry: Registry | None) -> str:
    """A ref this machine pushed, as the cluster pulls it (Tilt swaps the host prefix)."""
    if registry and registry.host_from_container_runtime and local_ref.startswith(
        registry.host + "/"
    ):
        return registry.host_from_container_runtime + local_ref[len(registry.host) :]
    return local_ref


def parse_local_registry_hosting(text: str) -> Registry | None:
    """The registry in a KEP-1755 `localRegistryHosting.v1` document, if it names a host."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("host"), str) or not data["host"]:
        return None

    def field(key: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else ""

    return Registry(
        host=field("host"),
        host_from_container_runtime=field("hostFromContainerRuntime"),
        host_from_cluster_network=field("hostFromClusterNetwork"),
        help=field("help"),
    )


async def registry_from_cluster(kube: ConfigMapReader) -> Registry | None:
    """The registry the cluster advertises in kube-public/local-registry-hosting. A user
    who may not read kube-public (a developer whose rights end at their namespace, on a
    shared cluster) sees no advertisement rather than an error."""
    try:
        cm = await kube.get_configmap(CONFIGMAP_NAMESPACE, CONFIGMAP_NAME)
    except Exception as exc:
        if getattr(exc, "status", None) in (401, 403):
            return None
        raise
    if not cm:
        return None
    text = (cm.get("data") or {}).get(CONFIGMAP_KEY)
    return parse_local_registry_hosting(text) if isinstance(text, str) else None


def registry_from_settings(settings: plan.Settings) -> Registry | None:
    """`default_registry(host, host_from_cluster=, single_name=)`: push to `host`; the
    cluster's runtime pulls from `host_from_cluster` (KEP-1755's hostFromContainerRuntime)
    when given."""
    if not settings.default_registry:
        return None
    return Registry(host=settings.default_registry,
                    host_from_container_runtime=settings.default_registry_host_from_cluster,
                    single_name=settings.default_registry_single_name)


def choose_registry(
    from_cluster: Registry | None, settings: plan.Settings, *, local_context: bool = True,
) -> tuple[Registry | None, str]:
    """The registry to use and a note for the log explaining the choice.

    On a local cluster the cluster's own registry wins over `default_registry()` (Tilt's
    rule: the Tiltfile's registry is for other clusters). On any other cluster the
    Tiltfile's `default_registry()` wins: a KEP-1755 advertisement names a registry local to
    the machine running that cluster, which a developer's machine talking to a shared
    cluster cannot push to; without `default_registry()` the advertisement is used."""
    from_tiltfile = registry_from_settings(settings)
    if from_cluster and (local_context or from_tiltfile is None):
        note = f"Auto-detected local registry from environment: {from_cluster.host}"
        if from_tiltfile is not None:
            note += " (default_registry() is ignored in favor of the auto-detected registry)"
        return from_cluster, note
    if from_tiltfile is not None:
        note = f"Using default registry from Tiltfile: {from_tiltfile.host}"
        if from_tiltfile.host_from_container_runtime:
            note += f" (the cluster pulls from {from_tiltfile.host_from_container_runtime})"
        if from_cluster:
            note += (f"; the cluster's advertised local registry {from_cluster.host} is not "
                     "used for this non-local context")
        return from_tiltfile, note
    return None, "No local registry detected and no default registry set"


async def discover_registry(
    kube: ConfigMapReader, settings: plan.Settings, *, local_context: bool = True,
) -> tuple[Registry | None, str]:
    """Read the cluster's advertisement and apply `choose_registry`."""
    return choose_registry(await registry_from_cluster(kube), settings,
                           local_context=local_context)


def cluster_shares_local_docker(kube_context: str, docker_host: str | None = None) -> bool:
    """True when images built on the local engine are already visible to the cluster, so
    pushing is skipped: a desktop cluster context while Docker is the local default engine."""
    if docker_host is None:
        docker_host = os.environ.get("DOCKER_HOST", "")
    local_engine = not docker_host or docker_host.startswith("unix://")
    return local_engine and kube_context in SHARED_ENGINE_CONTEXTS
