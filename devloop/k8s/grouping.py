"""Group Kubernetes objects into resources the way Tilt does (pure functions).

Every workload (an object that creates pods, or a kind declared with k8s_kind) becomes a
resource named by the shortest unique form of `name:kind:namespace:group`. Only Services
join a workload, when their selector matches its pod template's labels, exactly as Tilt
groups by default. ConfigMaps, Secrets, PersistentVolumeClaims, Ingresses and everything
else stay in "uncategorized": resource names are part of the user's Tiltfile
(`k8s_resource('uncategorized', ...)`, `objects=[...]`), so they must come out the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devloop.k8s.images import pod_template
from devloop.k8s.objects import group_of, namespace_or_default
from devloop.model import plan as p

UNCATEGORIZED = "uncategorized"


class GroupingError(Exception):
    pass


# ---------------------------------------------------------------------------- names


def potential_names(obj: p.K8sObject) -> list[str]:
    """Names a workload may take, shortest first: name, name:kind, ... :namespace:group."""
    components = [obj.name, obj.kind, namespace_or_default(obj),
                  group_of(obj.api_version) or "core"]
    return [":".join(components[:n]).lower() for n in range(1, len(components) + 1)]


def unique_names(workloads: Sequence[p.K8sObject]) -> list[str]:
    """Tilt's k8s.UniqueNames: each workload takes its shortest name no other one wants."""
    counts: dict[str, int] = {}
    for obj in workloads:
        for name in potential_names(obj):
            counts[name] = counts.get(name, 0) + 1
    names: list[str] = []
    for obj in workloads:
        candidates = potential_names(obj)
        chosen = next((n for n in candidates if counts[n] == 1), None)
        if chosen is None:
            raise GroupingError(
                f"Duplicate YAML Entity(s): [{candidates[-1]}] has been detected across one or "
                "more resources. Only one specification per entity can be applied to the "
                "cluster; to ensure expected behavior, remove the duplicate specifications.")
        names.append(chosen)
    return names


def fragment_matches(objects: Sequence[p.K8sObject], fragment: str) -> list[int]:
    """Indexes of objects a k8s_resource(objects=[...]) selector names.

    A selector is "name", "name:kind" or "name:kind:namespace" (case-insensitive); an
    omitted namespace matches any namespace, so objects in a namespace can be named
    without it as long as the name stays unambiguous.
    """
    parts = fragment.lower().split(":")
    if not fragment or len(parts) > 3:
        raise GroupingError(
            f"invalid object selector {fragment!r}: want 'name', 'name:kind' or "
            "'name:kind:namespace'")
    out: list[int] = []
    for index, obj in enumerate(objects):
        fields = [obj.name.lower(), obj.kind.lower(), namespace_or_default(obj).lower()]
        if all(part == fields[n] for n, part in enumerate(parts)):
            out.append(index)
    return out


def full_name(obj: p.K8sObject) -> str:
    return f"{obj.name}:{obj.kind}:{namespace_or_default(obj)}"


# ---------------------------------------------------------------------------- relations


def service_selects(service: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A Service with a non-empty selector whose every pair is among the pod labels."""
    selector = (service.get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def _is_core_service(obj: p.K8sObject) -> bool:
    return obj.kind == "Service" and obj.api_version == "v1"


def _namespace_admits(candidate: p.K8sObject, workload: p.K8sObject) -> bool:
    """Tilt's rule: a Service in the default namespace (written or not) may join a workload
    in any namespace; one in another namespace only a workload of that namespace."""
    namespace = namespace_or_default(candidate)
    return namespace == "default" or namespace == namespace_or_default(workload)


def related(workload: p.K8sObject, pool: Iterable[int],
            objects: Sequence[p.K8sObject]) -> list[int]:
    """Indexes (from `pool`) of the Services that select `workload`'s pod template labels.

    Only objects with a nested pod template (Deployment, Job, CronJob...) take Services;
    a bare Pod has none, so Tilt leaves Services selecting it uncategorized.
    """
    if workload.kind.lower() == "pod":
        return []
    template = pod_template(workload.manifest())
    if template is None:
        return []
    labels = (template.get("metadata") or {}).get("labels") or {}
    return [i for i in pool
            if _is_core_service(objects[i]) and _namespace_admits(objects[i], workload)
            and service_selects(objects[i].manifest(), labels)]


# ---------------------------------------------------------------------------- assembly


@dataclass
class Group:
    name: str
    objects: list[int] = field(default_factory=list)
    workload: int | None = None


def group_workloads(objects: Sequence[p.K8sObject], workloads: Sequence[int],
                    names: Sequence[str], reserved: Iterable[int] = ()) -> tuple[list[Group],
                                                                                 list[int]]:
    """One group per workload (named by `names`), with its related objects.

    `reserved` objects (claimed by k8s_resource(objects=...)) never join a workload
    automatically. Returns the groups in YAML order and the indexes left over.
    """
    workload_set = set(workloads)
    reserved_set = set(reserved)
    pool = [i for i in range(len(objects)) if i not in workload_set and i not in reserved_set]
    groups: list[Group] = []
    for index, name in zip(workloads, names, strict=True):
        members = related(objects[index], pool, objects)
        pool = [i for i in pool if i not in members]
        groups.append(Group(name, [index, *members], index))
    leftover = sorted(pool + [i for i in reserved_set if i not in workload_set])
    return groups, leftover
