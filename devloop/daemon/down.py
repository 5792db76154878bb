"""`devloop down`: delete what the Tiltfile deploys, and only what devloop created.

Objects are deleted in reverse dependency order (dependents first) and only when the live
object carries devloop's owner label, so an object someone else created under the same
name is never touched. Namespaces are kept unless `--delete-namespaces`. Then it waits until
they are gone, saying which objects and which stopping pods it waits for (a pod that
ignores SIGTERM takes its whole grace period), unless `--wait=false`, like kubectl.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from typing import Any

from devloop.engine.runner import UpdateError
from devloop.engine.runner_registry import (
    TeardownContext,
    needs_cluster,
    tear_down,
    tear_down_plan,
)
from devloop.k8s import contexts
from devloop.k8s.client import KubeClient, KubeError, ObjectRef
from devloop.k8s.pull_secrets import delete_pull_secrets
from devloop.k8s.session_lock import Holder, delete_stale_lock, describe_holder, lock_state
from devloop.model import plan as p
from devloop.tiltfile.isolated import evaluate_in_child_async

GONE_TIMEOUT_SECONDS = 120.0
# How often the wait says what it still waits for.
PROGRESS_SECONDS = 5.0


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


async def run_down(tiltfile: str, args: tuple[str, ...], *, delete_namespaces: bool,
                   volumes: bool = False, wait: bool = True) -> int:
    plan = (await evaluate_in_child_async(tiltfile, args=args, subcommand="down")).plan
    if await tear_down_plan(plan, TeardownContext(volumes=volumes), print) \
            and not needs_cluster(plan):
        return 0  # a Compose-only Tiltfile needs no cluster
    try:
        kube = await KubeClient.create(os.environ.get("KUBECONFIG") or None,
                                       plan.settings.k8s_context or None)
    except KubeError as exc:
        raise UpdateError(str(exc)) from None
    if plan.settings.k8s_namespace:
        kube.namespace = plan.settings.k8s_namespace
    deleted: list[dict[str, Any]] = []
    try:
        await check_shared_namespace(kube, plan)
        context = TeardownContext(kube=kube, delete_namespaces=delete_namespaces,
                                  volumes=volumes)
        for resource in reverse_dependency_order(plan.resources):
            deleted += await tear_down(resource, plan, context, print)
        deleted += await delete_pull_secrets(kube, kube.namespace, print)
        await asyncio.to_thread(delete_stale_lock, kube, kube.namespace, print)
        if wait:
            await _wait_gone(kube, deleted, default_namespace=kube.namespace)
        elif deleted:
            print("Not waiting for the deletion of "
                  f"{', '.join(_name(m) for m in deleted)} to finish (--wait=false)")
    finally:
        kube.close()
    print(f"Deleted {len(deleted)} objects")
    return 0


async def check_shared_namespace(kube: KubeClient, plan: p.Plan) -> None:
    """On a shared cluster: the context must be allowed, as for `up`, and a live session
    of another user or machine in the namespace stops `down` (its objects may carry the
    same names as this Tiltfile's); this user's own session elsewhere does not (Tilt's
    `down` beside a running `up`)."""
    refused = contexts.refusal(kube.context, plan.settings.allowed_k8s_contexts)
    if refused:
        raise UpdateError(refused)
    if contexts.is_local(kube.context):
        return
    live, stale = await asyncio.to_thread(lock_state, kube, kube.namespace)
    me = Holder.this_process()
    if live is None or stale:
        return
    holder = Holder.of(live)
    if (holder.user, holder.host) != (me.user, me.host):
        raise UpdateError(
            f"namespace {kube.namespace!r} is in use by another devloop session: "
            f"{describe_holder(live, now=datetime.now(UTC))}; `down` would delete objects "
            "it may have deployed under the same names. Stop that session first, or run "
            "`down` with your own namespace (--namespace).")


def _name(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    return f"{manifest.get('kind')}/{meta.get('name') if isinstance(meta, dict) else ''}"


def stopping_pods(pods: list[dict[str, Any]], workloads: list[str]) -> list[str]:
    """Pods being deleted that belong to the named workloads (Deployment `web` owns pods
    `web-<hash>-<id>`), each with its grace period: what a deletion waits for."""
    found = []
    for pod in pods:
        meta = pod.get("metadata", {})
        name = str(meta.get("name", ""))
        if not meta.get("deletionTimestamp") or not any(
                name == w or name.startswith(w + "-") for w in workloads):
            continue
        grace = meta.get("deletionGracePeriodSeconds")
        found.append(f"pod {name} (stopping" + (f", grace period {grace}s)" if grace
                                                 else ")"))
    return found


async def _wait_gone(kube: KubeClient, manifests: list[dict[str, Any]], *,
                     default_namespace: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GONE_TIMEOUT_SECONDS
    pending = list(manifests)
    said_at = -PROGRESS_SECONDS
    started = loop.time()
    while pending and loop.time() < deadline:
        pending = [m for m in pending if await kube.get(ObjectRef.of(m)) is not None]
        if not pending:
            break
        if loop.time() - said_at >= PROGRESS_SECONDS:
            said_at = loop.time()
            print(f"Waiting for {', '.join(_name(m) for m in pending)} to be deleted"
                  + await _waiting_on(kube, pending, default_namespace)
                  + (f" ({loop.time() - started:.0f}s; --wait=false does not wait)"
                     if loop.time() > started + 1 else " (--wait=false does not wait)"),
                  flush=True)
        await asyncio.sleep(0.5)
    for manifest in pending:
        print(f"Still deleting {_name(manifest)}", file=sys.stderr)


async def _waiting_on(kube: KubeClient, pending: list[dict[str, Any]],
                      default_namespace: str) -> str:
    by_namespace: dict[str, list[str]] = {}
    for manifest in pending:
        meta = manifest.get("metadata", {})
        namespace = meta.get("namespace") or default_namespace
        by_namespace.setdefault(namespace, []).append(str(meta.get("name", "")))
    pods: list[str] = []
    for namespace, names in by_namespace.items():
        try:
            pods += stopping_pods(await kube.list_pods(namespace), names)
        except KubeError:
            continue  # only a detail of the message
    return f": {', '.join(pods)}" if pods else ""
