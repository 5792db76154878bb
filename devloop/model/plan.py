"""The Plan: the typed, immutable result of evaluating a Tiltfile.

Everything the engine needs is here and nothing refers back to the Starlark
interpreter. Collections are tuples so a Plan can be hashed, compared and diffed
between two evaluations; Kubernetes manifests are kept as canonical JSON text.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any


class TriggerMode(enum.IntEnum):
    """Tilt's trigger modes; the integer values match Tilt's TRIGGER_MODE_* constants."""

    AUTO = 0
    MANUAL = 1


class ResourceType(enum.StrEnum):
    K8S = "k8s"
    LOCAL = "local"
    COMPOSE = "compose"
    CUSTOM_DEPLOY = "k8s-custom-deploy"


# ---------------------------------------------------------------------------- live update


@dataclass(frozen=True)
class SyncStep:
    local_path: str
    remote_path: str


@dataclass(frozen=True)
class RunStep:
    command: tuple[str, ...]
    shell: bool
    triggers: tuple[str, ...] = ()
    echo_off: bool = False


@dataclass(frozen=True)
class FallBackOnStep:
    paths: tuple[str, ...]


@dataclass(frozen=True)
class RestartContainerStep:
    pass


@dataclass(frozen=True)
class InitialSyncStep:
    pass


LiveUpdateStep = SyncStep | RunStep | FallBackOnStep | RestartContainerStep | InitialSyncStep


# ---------------------------------------------------------------------------- images


@dataclass(frozen=True)
class DockerBuild:
    ref: str
    context: str
    dockerfile: str
    dockerfile_contents: str | None = None
    build_args: tuple[tuple[str, str], ...] = ()
    target: str = ""
    only: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    live_update: tuple[LiveUpdateStep, ...] = ()
    match_in_env_vars: bool = False
    platform: str = ""
    network: str = ""
    ssh: tuple[str, ...] = ()
    secret: tuple[str, ...] = ()
    extra_tag: tuple[str, ...] = ()
    cache_from: tuple[str, ...] = ()
    pull: bool = False
    container_args: tuple[str, ...] | None = None
    extra_hosts: tuple[str, ...] = ()
    # Images of the same Tiltfile that the Dockerfile builds FROM (or COPY --from), found
    # by parsing it (devloop.build.dockerfile_deps): built first, their refs injected.
    image_deps: tuple[str, ...] = ()
    kind: str = "docker_build"


@dataclass(frozen=True)
class CustomBuild:
    ref: str
    command: tuple[str, ...]
    shell: bool
    deps: tuple[str, ...]
    tag: str = ""
    skips_local_docker: bool = False
    disable_push: bool = False
    outputs_image_ref_to: str = ""
    live_update: tuple[LiveUpdateStep, ...] = ()
    ignore: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    match_in_env_vars: bool = False
    env: tuple[tuple[str, str], ...] = ()
    dir: str = ""
    image_deps: tuple[str, ...] = ()
    container_args: tuple[str, ...] | None = None
    kind: str = "custom_build"


@dataclass(frozen=True)
class LiveUpdateOnly:
    """The image target Tilt makes for a k8s_custom_deploy with live_update: never built,
    it only names which containers the live update syncs into (`ref` is the
    image_selector, or `k8s_custom_deploy:<name>` with a container_selector). Listed in
    Plan.images for the record; no resource's image_refs names it."""

    ref: str
    resource: str
    deps: tuple[str, ...] = ()
    live_update: tuple[LiveUpdateStep, ...] = ()
    container_selector: str = ""
    kind: str = "live_update_only"


ImageTarget = DockerBuild | CustomBuild


# ---------------------------------------------------------------------------- probes, links


@dataclass(frozen=True)
class HttpGetAction:
    port: int
    host: str = "localhost"
    scheme: str = "http"
    path: str = ""


@dataclass(frozen=True)
class TcpSocketAction:
    port: int
    host: str = "localhost"


@dataclass(frozen=True)
class ExecAction:
    command: tuple[str, ...]


@dataclass(frozen=True)
class Probe:
    action: HttpGetAction | TcpSocketAction | ExecAction
    initial_delay_secs: int = 0
    timeout_secs: int = 1
    period_secs: int = 10
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True)
class Link:
    url: str
    name: str = ""


@dataclass(frozen=True)
class PortForward:
    local_port: int
    container_port: int
    host: str = "localhost"
    name: str = ""
    link_path: str = ""


# ---------------------------------------------------------------------------- kubernetes


@dataclass(frozen=True)
class K8sObject:
    """One Kubernetes object, as applied (before image injection)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    manifest_json: str

    def manifest(self) -> dict[str, Any]:
        """A fresh, mutable copy of the object."""
        loaded: dict[str, Any] = json.loads(self.manifest_json)
        return loaded

    @property
    def key(self) -> str:
        """kind/namespace/name, the identity Tilt uses in object selectors."""
        group = self.api_version.split("/")[0] if "/" in self.api_version else ""
        kind = f"{self.kind}.{group}" if group else self.kind
        return f"{self.name}:{kind}:{self.namespace or 'default'}".lower()


@dataclass(frozen=True)
class ImageInjection:
    """An image reference in an object that a build target replaces at deploy time."""

    object_key: str
    json_path: str
    image_ref: str


@dataclass(frozen=True)
class CommandSpec:
    argv: tuple[str, ...]
    shell: bool
    env: tuple[tuple[str, str], ...] = ()
    dir: str = ""


@dataclass(frozen=True)
class Resource:
    """One unit of the loop: a workload with its objects, a local process, a compose service."""

    name: str
    type: ResourceType
    labels: tuple[str, ...] = ()
    resource_deps: tuple[str, ...] = ()
    trigger_mode: TriggerMode = TriggerMode.AUTO
    auto_init: bool = True
    links: tuple[Link, ...] = ()
    # Kubernetes
    objects: tuple[K8sObject, ...] = ()
    image_refs: tuple[str, ...] = ()
    injections: tuple[ImageInjection, ...] = ()
    port_forwards: tuple[PortForward, ...] = ()
    pod_readiness: str = ""
    extra_pod_selectors: tuple[tuple[tuple[str, str], ...], ...] = ()
    discovery_strategy: str = ""
    # local_resource
    cmd: CommandSpec | None = None
    serve_cmd: CommandSpec | None = None
    deps: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    allow_parallel: bool = False
    readiness_probe: Probe | None = None
    # k8s_custom_deploy
    apply_cmd: CommandSpec | None = None
    delete_cmd: CommandSpec | None = None
    live_update: tuple[LiveUpdateStep, ...] = ()
    image_selector: str = ""
    container_selector: str = ""
    # docker_compose
    compose_service: str = ""
    # Digest of the service's resolved config: a reload that changes it re-runs `up`.
    compose_config_hash: str = ""


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class UpdateSettings:
    max_parallel_updates: int = 3
    k8s_upsert_timeout_secs: int = 30
    suppress_unused_image_warnings: tuple[str, ...] = ()
    k8s_server_side_apply: str = "auto"


@dataclass(frozen=True)
class CISettings:
    k8s_grace_period_secs: int | None = None
    timeout_secs: int | None = None
    readiness_timeout_secs: int | None = None


@dataclass(frozen=True)
class WatchSettings:
    ignore: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretSettings:
    disable_scrub: bool = False


@dataclass(frozen=True)
class ComposeProject:
    config_paths: tuple[str, ...]
    project_name: str = ""
    env_file: str = ""
    profiles: tuple[str, ...] = ()
    services_json: str = "{}"
    project_dir: str = ""
    wait: bool = False


@dataclass(frozen=True)
class ExtensionObject:
    """A v1alpha1.* object (UIButton, ExtensionRepo...) declared by the Tiltfile."""

    kind: str
    name: str
    spec_json: str
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Settings:
    update: UpdateSettings = field(default_factory=UpdateSettings)
    ci: CISettings = field(default_factory=CISettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    secrets: SecretSettings = field(default_factory=SecretSettings)
    default_registry: str = ""
    default_registry_single_name: str = ""
    default_registry_host_from_cluster: str = ""
    allowed_k8s_contexts: tuple[str, ...] = ()
    k8s_context: str = ""
    k8s_namespace: str = ""
    team_id: str = ""
    version_constraint: str = ""
    docker_prune_enabled: bool = True
    snapshots_disabled: bool = False
    # trigger_mode(): the trigger mode of resources that do not set their own.
    default_trigger_mode: TriggerMode = TriggerMode.AUTO


@dataclass(frozen=True)
class Plan:
    tiltfile: str
    resources: tuple[Resource, ...] = ()
    images: tuple[ImageTarget | LiveUpdateOnly, ...] = ()
    settings: Settings = field(default_factory=Settings)
    enabled_resources: tuple[str, ...] | None = None
    compose: ComposeProject | None = None
    extension_objects: tuple[ExtensionObject, ...] = ()
    config_files: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    environ: tuple[tuple[str, str], ...] = ()
    tiltfile_args: tuple[str, ...] = ()

    def resource(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def image(self, ref: str) -> ImageTarget:
        """The build of `ref` (live-update-only targets are not builds)."""
        for image in self.images:
            if image.ref == ref and not isinstance(image, LiveUpdateOnly):
                return image
        raise KeyError(ref)

    def images_for(self, refs: tuple[str, ...]) -> list[ImageTarget]:
        """The images `refs` name and their image_deps: dependencies first (the order to
        build them in). Refs with no build are left out."""
        order: list[ImageTarget] = []
        seen: set[str] = set()

        def visit(ref: str) -> None:
            if ref in seen:
                return
            seen.add(ref)
            try:
                image = self.image(ref)
            except KeyError:
                return
            for dep in image.image_deps:
                visit(dep)
            order.append(image)

        for ref in refs:
            visit(ref)
        return order


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for a Plan (or any part of it); manifests are inlined as objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, SyncStep | RunStep | FallBackOnStep | RestartContainerStep
                      | InitialSyncStep | DockerBuild | CustomBuild | LiveUpdateOnly
                      | HttpGetAction
                      | TcpSocketAction | ExecAction):
            out["type"] = type(value).__name__
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.name == "manifest_json":
                out["manifest"] = json.loads(item)
            elif f.name in ("spec_json", "services_json"):
                out[f.name.removesuffix("_json")] = json.loads(item)
            else:
                out[f.name] = to_jsonable(item)
        return out
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value, enum.StrEnum) else value.name.lower()
    if isinstance(value, tuple | list):
        return [to_jsonable(v) for v in value]
    return value
