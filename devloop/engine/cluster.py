"""The cluster seam of the engine: image pipeline (build, push) and Kubernetes calls.

One instance per session, shared by every Kubernetes resource: it discovers the registry
once, caches built images by their inputs (two resources deploying one image build it
once), and adapts the docker and kubernetes adapters to what `K8sRunner` needs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from devloop.build import registry as reg
from devloop.build.context import context_digest
from devloop.build.custom_builder import CustomBuilder
from devloop.build.docker_builder import BuildError, DockerBuilder
from devloop.engine.runner import UpdateError
from devloop.k8s.client import KubeClient, KubeError, PortForwarder
from devloop.k8s.inject import prepare_manifest
from devloop.tiltfile import plan as p

LogFn = Callable[[str], None]


class Cluster:
    def __init__(self, kube: KubeClient, registry: reg.Registry | None, *,
                 push: bool, builder: DockerBuilder | None = None) -> None:
        self.kube = kube
        self.registry = registry
        self.push = push
        self.builder = builder or DockerBuilder()
        self.custom = CustomBuilder()
        self._built: dict[tuple[str, str], str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    async def connect(cls, plan: p.Plan, *, log: LogFn) -> Cluster:
        kubeconfig = os.environ.get("KUBECONFIG") or None
        kube = KubeClient.from_kubeconfig(kubeconfig, context=plan.settings.k8s_context or None)
        context = kube.context_name
        allowed = plan.settings.allowed_k8s_contexts
        if allowed and context not in allowed:
            log(f"WARNING: kube context {context!r} is not in allow_k8s_contexts {allowed}")
        registry, note = await reg.discover_registry(kube, plan.settings)
        log(note)
        push = not reg.cluster_shares_local_docker(context)
        return cls(kube, registry, push=push)

    # -- images
    async def build_images(self, plan: p.Plan, refs: tuple[str, ...],
                           log: LogFn) -> dict[str, str]:
        """Build (or reuse) every image in `refs` and their image_deps; map ref -> the ref
        the cluster pulls."""
        result: dict[str, str] = {}
        for image in _build_order(plan, refs):
            result[image.ref] = await self._build_one(image, result, log)
        return result

    async def _build_one(self, image: p.ImageTarget, deps: dict[str, str], log: LogFn) -> str:
        lock = self._locks.setdefault(image.ref, asyncio.Lock())
        async with lock:
            if isinstance(image, p.DockerBuild):
                digest = await asyncio.to_thread(context_digest, image)
                cached = self._built.get((image.ref, digest))
                if cached:
                    log(f"Image {image.ref} unchanged: reusing {cached}")
                    return cached
                log(f"Building image {image.ref}")
                try:
                    built = await self.builder.build(image, log=log, registry=self.registry)
                    ref = built.ref
                    if self.push and self.registry is not None:
                        log(f"Pushing {built.ref}")
                        ref = await self.builder.push(built, self.registry, log=log)
                except BuildError as exc:
                    raise UpdateError(f"image {image.ref}: {exc}") from None
                cluster_ref = reg.cluster_ref_for_local(ref, self.registry)
                self._built[(image.ref, digest)] = cluster_ref
                return cluster_ref
            try:
                built_ref = await self.custom.build(image, registry=self.registry, log=log,
                                                    push=self.push)
            except BuildError as exc:
                raise UpdateError(f"custom_build {image.ref}: {exc}") from None
            return reg.cluster_ref_for_local(built_ref, self.registry)

    # -- objects
    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]:
        injections = {}
        for injection in resource.injections:
            injections.setdefault(injection.object_key, []).append(injection)
        return [prepare_manifest(obj.manifest(), injections.get(obj.key, []), images,
                                 resource.name) for obj in resource.objects]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.kube.server_side_apply(manifest)
        except KubeError as exc:
            raise UpdateError(str(exc)) from None

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        return await self.kube.get(manifest)

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.kube.pods_for_workload(workload)

    async def follow_logs(self, namespace: str, pod: str, container: str, log: LogFn) -> None:
        async for line in self.kube.stream_logs(namespace, pod, container):
            log(line)

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Callable[[int, str], None]) -> PortForwarder:
        forwarder = PortForwarder(self.kube, on_error=lambda message: on_error(
            forward.local_port, message))
        host = "127.0.0.1" if forward.host in ("localhost", "") else forward.host
        await forwarder.start(namespace, pod, forward.local_port, forward.container_port,
                              host=host)
        return forwarder

    async def close(self) -> None:
        await self.kube.close()


def _build_order(plan: p.Plan, refs: tuple[str, ...]) -> list[p.ImageTarget]:
    """Images and their image_deps, dependencies first."""
    order: list[p.ImageTarget] = []
    seen: set[str] = set()

    def visit(ref: str) -> None:
        if ref in seen:
            return
        seen.add(ref)
        try:
            image = plan.image(ref)
        except KeyError:
            return
        if isinstance(image, p.CustomBuild):
            for dep in image.image_deps:
                visit(dep)
        order.append(image)

    for ref in refs:
        visit(ref)
    return order
