"""`devloop down`: delete what the Tiltfile deploys, and only what devloop created.

Objects are deleted in reverse dependency order (dependents first) and only when the live
object carries devloop's owner label, so an object someone else created under the same
name is never touched. Namespaces are kept unless `--delete-namespaces`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

from devloop.engine.custom_deploy_runner import run_delete_cmd
from devloop.engine.runner import UpdateError
from devloop.k8s.client import KubeClient, KubeError, ObjectRef
from devloop.tiltfile import plan as p
from devloop.tiltfile.isolated import evaluate_in_child

OWNER_LABEL = "app.kubernetes.io/managed-by"
OWNER_VALUE = "devloop"
GONE_TIMEOUT_SECONDS = 120.0


def reverse_dependency_order(resources: tuple[p.Resource, ...]) -> list[p.Resource]:
    """Dependents before what they depend on (Tiltfile order among independent ones)."""
    by_name = {r.name: r for r in resources}
    order: list[p.Resource] = []
    seen: set[str] = set()

    def visit(resource: p.Resource) -> None:
        if resource.name in seen:
            return
        seen.add(resource.name)
        for dep in resource.resource_deps:
            if dep in by_name:
                visit(by_name[dep])
        order.append(resource)

    for resource in resources:
        visit(resource)
    return list(reversed(order))


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


async def run_down(tiltfile: str, args: tuple[str, ...], *, delete_namespaces: bool) -> int:
    plan = evaluate_in_child(tiltfile, args=args, subcommand="down").plan
    try:
        kube = await KubeClient.create(os.environ.get("KUBECONFIG") or None,
                                       plan.settings.k8s_context or None)
    except KubeError as exc:
        raise UpdateError(str(exc)) from None
    deleted: list[dict[str, Any]] = []
    try:
        for resource in reverse_dependency_order(plan.resources):
            if resource.type == p.ResourceType.CUSTOM_DEPLOY:
                await run_delete_cmd(plan, resource, print)
                continue
            deleted += await delete_owned(kube, resource, delete_namespaces=delete_namespaces,
                                          say=print)
        await _wait_gone(kube, deleted)
    finally:
        kube.close()
    print(f"Deleted {len(deleted)} objects")
    return 0


async def _wait_gone(kube: KubeClient, manifests: list[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE_TIMEOUT_SECONDS
    pending = list(manifests)
    while pending and loop.time() < deadline:
        pending = [m for m in pending if await kube.get(ObjectRef.of(m)) is not None]
        if pending:
            await asyncio.sleep(0.5)
    for manifest in pending:
        meta = manifest.get("metadata", {})
        name = meta.get("name") if isinstance(meta, dict) else ""
        print(f"Still deleting {manifest.get('kind')}/{name}", file=sys.stderr)
