"""Rewrite a manifest for deploy: built image refs in, pull policy, devloop's owner labels.

- Every `plan.ImageInjection` for this object replaces the value at its JSONPath (the
  locations `images.find_images` reported) with the deployed ref of its build.
- Like Tilt, an object that got an image injected has `imagePullPolicy: IfNotPresent` on
  all of its containers: each deploy injects a new content-based tag, so a cached image is
  always the right one, and `Always` would only add registry round-trips.
- The object gets the owner label `app.kubernetes.io/managed-by: devloop` (what `down`
  deletes by) and the annotation `devloop.dev/resource: <resource>`; a workload's pod
  template gets both too, so its pods can be found by label. Selectors are left alone:
  they are immutable on most workloads, and pods still match them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from devloop.k8s.images import expand_path, parse_path, pod_spec_path, pod_template
from devloop.model import plan

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER_VALUE = "devloop"
RESOURCE_ANNOTATION = "devloop.dev/resource"
OWNER_SELECTOR = f"{OWNER_LABEL}={OWNER_VALUE}"
PULL_POLICY = "IfNotPresent"

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class InjectionError(ValueError):
    """An injection cannot be applied (no build result for its image, or a bad path)."""


def object_key(manifest: Mapping[str, Any]) -> str:
    """The same identity as `plan.K8sObject.key`, computed from a manifest."""
    meta = manifest.get("metadata") or {}
    obj = plan.K8sObject(api_version=str(manifest.get("apiVersion", "")),
                         kind=str(manifest.get("kind", "")), name=str(meta.get("name", "")),
                         namespace=str(meta.get("namespace") or ""), manifest_json="{}")
    return obj.key


def inject(manifest: Mapping[str, Any], injections: Sequence[plan.ImageInjection],
           deployed_refs: Mapping[str, str], *, resource: str = "",
           key: str | None = None) -> dict[str, Any]:
    """A new manifest with images replaced, pull policy set and owner labels added.

    `injections` may cover several objects: only those whose `object_key` is this object's
    (`key`, by default computed from the manifest) apply. `deployed_refs` maps an image
    target's ref (`ImageInjection.image_ref`) to the ref the cluster pulls."""
    out: dict[str, Any] = copy.deepcopy(dict(manifest))
    this_key = key if key is not None else object_key(out)
    replaced = False
    for inj in injections:
        if inj.object_key != this_key:
            continue
        if inj.image_ref not in deployed_refs:
            raise InjectionError(f"no built image for {inj.image_ref!r} to inject into "
                                 f"{this_key} at {inj.json_path}")
        replaced |= _set_all(out, inj.json_path, deployed_refs[inj.image_ref])
    if replaced:
        set_pull_policy(out, PULL_POLICY)
    add_owner_metadata(out, resource)
    return out


def _set_all(manifest: dict[str, Any], json_path: str, value: str) -> bool:
    try:
        steps = parse_path(json_path)
    except ValueError as e:
        raise InjectionError(str(e)) from e
    hits = expand_path(manifest, steps)
    for concrete, _old in hits:
        node: Any = manifest
        for step in concrete[:-1]:
            node = node[step]
        node[concrete[-1]] = value
    return bool(hits)


def set_pull_policy(manifest: dict[str, Any], policy: str) -> None:
    """Set imagePullPolicy on every container of a workload's pod spec(s)."""
    path = pod_spec_path(str(manifest.get("kind", "")))
    if path is None:
        return
    for _steps, spec in expand_path(manifest, list(path)):
        if not isinstance(spec, dict):
            continue
        for list_name in _CONTAINER_LISTS:
            for container in spec.get(list_name) or []:
                if isinstance(container, dict):
                    container["imagePullPolicy"] = policy


def _stamp(meta_holder: dict[str, Any], resource: str) -> None:
    meta = meta_holder.get("metadata")
    if not isinstance(meta, dict):
        meta = meta_holder["metadata"] = {}
    labels = meta.get("labels")
    if not isinstance(labels, dict):
        labels = meta["labels"] = {}
    labels[OWNER_LABEL] = OWNER_VALUE
    if resource:
        annotations = meta.get("annotations")
        if not isinstance(annotations, dict):
            annotations = meta["annotations"] = {}
        annotations[RESOURCE_ANNOTATION] = resource


def add_owner_metadata(manifest: dict[str, Any], resource: str) -> None:
    """Owner label and resource annotation on the object and its pod template."""
    _stamp(manifest, resource)
    template = pod_template(manifest)
    # A bare Pod is its own template: pod_template returns the Pod itself.
    if template is not None and template is not manifest:
        _stamp(template, resource)
