"""Deleting a Kubernetes resource's objects: only those devloop created.

`devloop down` and a reload that drops a resource delete the resource's objects, last
first, and only when the live object carries devloop's owner label, so an object someone
else created under the same name is never touched. Namespaces are kept unless asked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devloop.k8s.client import KubeClient, ObjectRef
from devloop.model import plan as p

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER_VALUE = "devloop"


async def delete_owned(kube: KubeClient, resource: p.Resource, *, delete_namespaces: bool,
                       say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Delete the resource's objects that carry devloop's owner label, last first."""
    deleted: list[dict[str, Any]] = []
    for obj in reversed(resource.objects):
        if obj.kind == "Namespace" and not delete_namespaces:
            say(f"Keeping namespace {obj.name} (use --delete-namespaces)")
            continue
        manifest = obj.manifest()
        live = await kube.get(ObjectRef.of(manifest))
        if live is None:
            continue
        labels = live.get("metadata", {}).get("labels") or {}
        if labels.get(OWNER_LABEL) != OWNER_VALUE:
            say(f"Skipping {obj.kind}/{obj.name}: not created by devloop")
            continue
        await kube.delete(manifest, propagation="Foreground")
        deleted.append(manifest)
        say(f"Deleted {obj.kind}/{obj.name}")
    return deleted
