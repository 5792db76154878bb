"""What runs next: a pure function of a snapshot, which also says why the others wait."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class UpdateState(enum.StrEnum):
    NONE = "none"  # never triggered (manual, auto_init=False) or nothing to do
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    OK = "ok"
    ERROR = "error"


class RuntimeState(enum.StrEnum):
    UNKNOWN = "unknown"
    PENDING = "pending"
    OK = "ok"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class ResourceView:
    """What the scheduler needs to know about one resource."""

    name: str
    deps: tuple[str, ...]
    dirty: bool
    update: UpdateState
    runtime: RuntimeState
    enabled: bool = True
    # A local_resource without allow_parallel runs alone, like Tilt: its command may
    # touch anything (a build directory, a shared cache) another update also uses.
    exclusive: bool = False
    # Deploys to Kubernetes (k8s_yaml objects or k8s_custom_deploy).
    k8s: bool = False

    @property
    def ready(self) -> bool:
        return self.update == UpdateState.OK and self.runtime in (
            RuntimeState.OK, RuntimeState.NOT_APPLICABLE)


# The resource holding the objects no workload claims (Namespaces, ConfigMaps, Secrets,
# PVCs...): the other Kubernetes resources may need them, so they wait while it applies.
UNCATEGORIZED = "uncategorized"
WAIT_UNCATEGORIZED = "waiting for the uncategorized objects to be applied"


@dataclass(frozen=True)
class Decision:
    start: tuple[str, ...]
    waiting: Mapping[str, str]


def next_updates(resources: Sequence[ResourceView], max_parallel: int) -> Decision:
    """Resources to start now, in Tiltfile order, and why each other dirty one waits.

    A resource starts when it is dirty, enabled, not already updating, every resource it
    depends on is ready (Tilt waits for deps to be up, not just built), and fewer than
    `max_parallel` updates are in flight.

    Like Tilt, the `uncategorized` Kubernetes resource goes before the other Kubernetes
    resources, which are held while it updates (it may create their namespace, config
    or volumes).

    A Kubernetes resource deployed before (its next update may be a live update, which
    Tilt runs outside its build queue) goes ahead of a local resource that runs alone:
    a save that dirties both (a check over the same sources) updates the running pods
    first, and the check runs once nothing else is in flight.
    """
    by_name = {resource.name: resource for resource in resources}
    running = [r for r in resources if r.update == UpdateState.IN_PROGRESS]
    in_flight = len(running)
    exclusive_running = any(r.exclusive for r in running)
    uncategorized_running = any(_is_uncategorized(r) for r in running)
    start: list[str] = []
    waiting: dict[str, str] = {}
    for resource in _redeploys_first(_uncategorized_first(resources)):
        if not resource.dirty or not resource.enabled:
            continue
        if resource.update == UpdateState.IN_PROGRESS:
            waiting[resource.name] = "an update of this resource is already running"
            continue
        blocked = [dep for dep in resource.deps
                   if dep in by_name and by_name[dep].enabled and not by_name[dep].ready]
        if blocked:
            waiting[resource.name] = f"waiting for dependencies: {', '.join(blocked)}"
            continue
        if resource.k8s and uncategorized_running:
            waiting[resource.name] = WAIT_UNCATEGORIZED
            continue
        if exclusive_running:
            waiting[resource.name] = "waiting for a local resource that runs alone"
            continue
        if resource.exclusive and in_flight:
            waiting[resource.name] = "runs alone (allow_parallel=False): waiting for others"
            continue
        if in_flight >= max_parallel:
            waiting[resource.name] = (
                f"waiting for a free slot (max_parallel_updates={max_parallel})")
            continue
        start.append(resource.name)
        in_flight += 1
        exclusive_running = resource.exclusive
        uncategorized_running = uncategorized_running or _is_uncategorized(resource)
    return Decision(tuple(start), waiting)


def _is_uncategorized(resource: ResourceView) -> bool:
    return resource.k8s and resource.name == UNCATEGORIZED


def _uncategorized_first(resources: Sequence[ResourceView]) -> list[ResourceView]:
    """Tiltfile order, except that `uncategorized` comes before the first Kubernetes
    resource (local resources before it keep their place)."""
    ordered = [r for r in resources if not _is_uncategorized(r)]
    found = [r for r in resources if _is_uncategorized(r)]
    if not found:
        return ordered
    at = next((i for i, r in enumerate(ordered) if r.k8s), len(ordered))
    return ordered[:at] + found + ordered[at:]


def _redeploys_first(resources: list[ResourceView]) -> list[ResourceView]:
    """The local resources that run alone and come before a Kubernetes resource deployed
    before move to just after the last such one; everything else keeps its order."""
    redeploys = [i for i, r in enumerate(resources)
                 if r.k8s and r.update in (UpdateState.OK, UpdateState.ERROR)]
    if not redeploys:
        return resources
    head, tail = resources[:redeploys[-1] + 1], resources[redeploys[-1] + 1:]
    return [r for r in head if not r.exclusive] + [r for r in head if r.exclusive] + tail
