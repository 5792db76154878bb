"""Group Kubernetes objects into resources the way Tilt does (pure functions).

Every workload (an object that creates pods, or a kind declared with k8s_kind) becomes a
resource named by the shortest unique form of `name:kind:namespace:group`. Objects that
belong with a workload join it: Services whose selector matches its pod labels (Tilt's
rule), and, because users think of them as part of the service, the ConfigMaps, Secrets
and PersistentVolumeClaims its pod template references and the Ingresses / HTTPRoutes
that route to one of its Services. Everything left over is "uncategorized".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devloop.k8s.images import pod_template
from devloop.k8s.objects import group_of, namespace_or_default
from devloop.tiltfile import plan as p

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


def _same_namespace(a: p.K8sObject, b: p.K8sObject) -> bool:
    return namespace_or_default(a) == namespace_or_default(b)


def service_selects(service: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A Service with a non-empty selector whose every pair is among the pod labels."""
    selector = (service.get("spec") or {}).get("selector")
    if not isinstance(selector, dict) or not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def referenced_names(pod_spec: dict[str, Any]) -> dict[str, set[str]]:
    """ConfigMap / Secret / PVC names a pod spec uses (volumes, envFrom, env valueFrom)."""
    refs: dict[str, set[str]] = {"configmap": set(), "secret": set(),
                                 "persistentvolumeclaim": set()}

    def add(kind: str, name: Any) -> None:
        if isinstance(name, str) and name:
            refs[kind].add(name)

    for volume in pod_spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        add("configmap", (volume.get("configMap") or {}).get("name"))
        add("secret", (volume.get("secret") or {}).get("secretName"))
        add("persistentvolumeclaim", (volume.get("persistentVolumeClaim") or {}).get("claimName"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict):
                add("configmap", (source.get("configMap") or {}).get("name"))
                add("secret", (source.get("secret") or {}).get("name"))
    for pull_secret in pod_spec.get("imagePullSecrets") or []:
        if isinstance(pull_secret, dict):
            add("secret", pull_secret.get("name"))
    for list_name in ("initContainers", "containers"):
        for container in pod_spec.get(list_name) or []:
            if not isinstance(container, dict):
                continue
            for env_from in container.get("envFrom") or []:
                if isinstance(env_from, dict):
                    add("configmap", (env_from.get("configMapRef") or {}).get("name"))
                    add("secret", (env_from.get("secretRef") or {}).get("name"))
            for env in container.get("env") or []:
                source = env.get("valueFrom") if isinstance(env, dict) else None
                if isinstance(source, dict):
                    add("configmap", (source.get("configMapKeyRef") or {}).get("name"))
                    add("secret", (source.get("secretKeyRef") or {}).get("name"))
    return refs


def routed_services(route: dict[str, Any]) -> set[str]:
    """Service names an Ingress (v1 or v1beta1) or a Gateway API HTTPRoute sends traffic to."""
    spec = route.get("spec") or {}
    names: set[str] = set()

    def backend(b: Any) -> None:
        if not isinstance(b, dict):
            return
        service = b.get("service")
        if isinstance(service, dict) and isinstance(service.get("name"), str):
            names.add(service["name"])
        if isinstance(b.get("serviceName"), str):
            names.add(b["serviceName"])

    if str(route.get("kind", "")).lower() == "ingress":
        backend(spec.get("defaultBackend"))
        backend(spec.get("backend"))
        for rule in spec.get("rules") or []:
            for path in ((rule or {}).get("http") or {}).get("paths") or []:
                backend((path or {}).get("backend"))
    else:
        for rule in spec.get("rules") or []:
            for ref in (rule or {}).get("backendRefs") or []:
                if isinstance(ref, dict) and ref.get("kind", "Service") == "Service" \
                        and isinstance(ref.get("name"), str):
                    names.add(ref["name"])
    return names


_ROUTE_KINDS = {"ingress", "httproute", "grpcroute"}


def related(workload: p.K8sObject, pool: Iterable[int],
            objects: Sequence[p.K8sObject]) -> list[int]:
    """Indexes (from `pool`) of the objects that belong with `workload`, in pool order."""
    template = pod_template(workload.manifest())
    if template is None:
        return []
    labels = (template.get("metadata") or {}).get("labels") or {}
    spec = template.get("spec") or {}
    refs = referenced_names(spec)
    candidates = [i for i in pool if _same_namespace(objects[i], workload)]
    taken: list[int] = []
    services: set[str] = set()
    for i in candidates:
        obj = objects[i]
        kind = obj.kind.lower()
        if kind == "service" and service_selects(obj.manifest(), labels):
            taken.append(i)
            services.add(obj.name)
        elif kind in refs and obj.api_version in ("v1",) and obj.name in refs[kind]:
            taken.append(i)
    for i in candidates:
        if i not in taken and objects[i].kind.lower() in _ROUTE_KINDS \
                and routed_services(objects[i].manifest()) & services:
            taken.append(i)
    return sorted(taken)


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
