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
from devloop.build.build_cache import BuildCache, EarlierBuilds
from devloop.build.context import context_digest
from devloop.build.credentials import (
    Credentials,
    CredentialsError,
    dockerconfigjson,
    registry_host,
)
from devloop.build.custom_builder import CustomBuilder, needs_push
from devloop.build.docker_builder import BuildError, DockerBuilder
from devloop.build.dockerfile_deps import inject_built_refs
from devloop.build.push import Pusher
from devloop.build.restart_wrapper import WrapError, wrap
from devloop.engine.runner import UpdateError
from devloop.k8s import contexts
from devloop.k8s.client import ExecResult, KubeClient, KubeError, ObjectRef
from devloop.k8s.events import EventHub
from devloop.k8s.inject import inject
from devloop.k8s.portforward import PortForwarder
from devloop.k8s.pull_secrets import attach, pull_secret_manifest, secret_name
from devloop.k8s.session_lock import Holder, NamespaceBusy, SessionLock
from devloop.k8s.streams import LogCursor, WatchCache
from devloop.model import plan as p
from devloop.model import trace as tr

LogFn = Callable[[str], None]


class Cluster:
    def __init__(self, kube: KubeClient, registry: reg.Registry | None, *,
                 push: bool, builder: DockerBuilder | None = None,
                 pusher: Pusher | None = None, build_cache: BuildCache | None = None) -> None:
        self.kube = kube
        self.registry = registry
        self.push = push
        self.builder = builder or DockerBuilder()
        self.pusher = pusher or Pusher()
        # The session's Lease on its namespace (non-local contexts; see session_lock.py).
        self.lock: SessionLock | None = None
        # The image pull secret made from the registry's credentials, and the hosts whose
        # images it is attached to (see pull_secrets.py).
        self.pull_secret = ""
        self.pull_hosts: tuple[str, ...] = ()
        self._pull_credentials: Credentials | None = None
        self.custom = CustomBuilder(self.builder)
        # Images earlier sessions built from the same inputs (see build_cache.py).
        self.earlier = EarlierBuilds(self.builder, build_cache)
        self._built: dict[tuple[str, str], tuple[str, str]] = {}  # -> (cluster ref, local)
        self._locks: dict[str, asyncio.Lock] = {}
        # Session-wide, so a reload's new runners never show a line or an event twice.
        self._log_cursors: dict[tuple[str, str, str], LogCursor] = {}
        self.events = EventHub(kube)

    @classmethod
    async def connect(cls, plan: p.Plan, *, log: LogFn) -> Cluster:
        kubeconfig = os.environ.get("KUBECONFIG") or None
        try:
            kube = await KubeClient.create(kubeconfig, plan.settings.k8s_context or None)
        except KubeError as exc:
            raise UpdateError(str(exc)) from None
        context = kube.context
        # --namespace (or the context's namespace, which the Tiltfile read): objects that
        # name no namespace go there.
        if plan.settings.k8s_namespace:
            kube.namespace = plan.settings.k8s_namespace
        refused = contexts.refusal(context, plan.settings.allowed_k8s_contexts)
        if refused:
            kube.close()
            raise UpdateError(refused)
        local = contexts.is_local(context)
        try:
            registry, note = await reg.discover_registry(kube, plan.settings,
                                                         local_context=local)
        except KubeError as exc:
            kube.close()
            raise UpdateError(f"cannot reach the Kubernetes cluster of context {context!r}: "
                              f"{exc}") from None
        log(note)
        push = not reg.cluster_shares_local_docker(context)
        cluster = cls(kube, registry, push=push)
        try:
            if not local:
                await cluster._lock_namespace(plan, log)
            await cluster._ensure_pull_secret(log)
        except BaseException:
            await cluster.close()
            raise
        return cluster

    async def _lock_namespace(self, plan: p.Plan, log: LogFn) -> None:
        """One session per namespace on a shared cluster (see session_lock.py)."""
        lock = SessionLock(self.kube, self.kube.namespace,
                           holder=Holder.this_process(plan.tiltfile), log=log)
        try:
            await lock.acquire()
        except NamespaceBusy as exc:
            raise UpdateError(str(exc)) from None
        except KubeError as exc:
            raise UpdateError(f"cannot take the devloop session lock in namespace "
                              f"{self.kube.namespace}: {exc}") from None
        if lock.held:
            self.lock = lock
            lock.start()
            log(f"Namespace {self.kube.namespace}: this session holds the devloop session "
                "lock")

    async def _ensure_pull_secret(self, log: LogFn) -> None:
        """When the registry needs credentials, the cluster pulls with the same ones: a
        pull secret in this session's namespace, attached to the pod specs it deploys."""
        if self.registry is None or not self.push:
            return
        try:
            found = await asyncio.to_thread(self.pusher.credentials_for, self.registry.host)
        except CredentialsError as exc:
            log(f"WARNING: no image pull secret for {self.registry.host}: {exc}")
            return
        await self._apply_pull_secret(found, log)

    async def _refresh_pull_secret(self, log: LogFn) -> None:
        """After a push: credentials that changed since the secret was made (a `docker
        login` after the registry refused the old ones) go into the secret too, or pods
        would fail to pull what was just pushed."""
        if self.registry is None:
            return
        found = self.pusher.known_credentials(self.registry.host)
        if found is not None and found != self._pull_credentials:
            await self._apply_pull_secret(found, log)

    async def _apply_pull_secret(self, found: Credentials | None, log: LogFn) -> None:
        if self.registry is None or found is None:
            return
        # Hosts only: a registry given as `host/path` logs in to `host`.
        hosts = tuple(dict.fromkeys(registry_host(h) for h in (self.registry.runtime_host,
                                                               self.registry.host)))
        try:
            config = dockerconfigjson(found, hosts=hosts)
        except CredentialsError as exc:
            log(f"WARNING: no image pull secret for {self.registry.host}: {exc}")
            return
        name = secret_name(hosts[0])
        try:
            await self.kube.server_side_apply(
                pull_secret_manifest(name, self.kube.namespace, config))
        except KubeError as exc:
            raise UpdateError(f"cannot create the image pull secret {name} in namespace "
                              f"{self.kube.namespace}: {exc}") from None
        self.pull_secret, self.pull_hosts = name, hosts
        self._pull_credentials = found
        log(f"Image pull secret {name} in namespace {self.kube.namespace}: credentials for "
            f"{self.registry.host} from {found.source}")

    @property
    def namespace(self) -> str:
        return self.kube.namespace

    # -- images
    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: LogFn, *,
                           inputs: dict[str, str] | None = None) -> dict[str, str]:
        """Build (or reuse) every image in `refs` and their image_deps; map ref -> the ref
        the cluster pulls. `inputs` receives the digest of each docker_build's inputs as
        the build read them (see `input_digests`)."""
        result: dict[str, str] = {}
        local: dict[str, str] = {}  # the same images as this machine's engine knows them
        for image in plan.images_for(refs):
            original = ""
            if isinstance(image, p.DockerBuild) and image.image_deps:
                original = await asyncio.to_thread(context_digest, image)
                # FROM an image of this Tiltfile: build from what was just built.
                image = await asyncio.to_thread(inject_built_refs, image, local)
            # A custom build's TILT_IMAGE_i are refs of this machine's engine, where its
            # command builds (Tilt: "relative to the current build environment").
            result[image.ref], local[image.ref], digest = await self._build_one(
                image, local, log)
            if inputs is not None and digest:
                inputs[image.ref] = original or digest
        return result

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]:
        """The content digest of each docker_build's inputs among `refs` and their deps
        (custom builds have none: what their command reads is unknown)."""
        digests: dict[str, str] = {}
        for image in plan.images_for(refs):
            if isinstance(image, p.DockerBuild):
                try:
                    digests[image.ref] = await asyncio.to_thread(context_digest, image)
                except OSError:
                    continue  # a missing context: the build says so with its own message
        return digests

    async def _build_one(self, image: p.ImageTarget, deps: dict[str, str],
                         log: LogFn) -> tuple[str, str, str]:
        """(cluster ref, local ref, digest of the inputs built: '' for a custom build)."""
        lock = self._locks.setdefault(image.ref, asyncio.Lock())
        async with lock:
            if isinstance(image, p.DockerBuild):
                digest = await asyncio.to_thread(context_digest, image)
                cached = self._built.get((image.ref, digest))
                if cached:
                    log(f"Image {image.ref} unchanged: reusing {cached[0]}")
                    tr.mark(tr.Phase.BUILD, image=image.ref, cached=True)
                    return (*cached, digest)
                step = tr.Phase.BUILD  # for the update's trace: what runs until marked
                try:
                    # restart_container(): the command runs under the restart wrapper.
                    wrapped = await asyncio.to_thread(wrap, image)
                    key = await self.earlier.key(wrapped, digest)
                    built = await self.earlier.find(wrapped, key, self.registry)
                    if built is not None:
                        log(f"Image {image.ref} unchanged since an earlier build of the same "
                            f"inputs: reusing {built.ref}")
                        tr.mark(step, image=image.ref, cached=True)
                    else:
                        log(f"Building image {image.ref}")
                        built = await self.builder.build(wrapped, log=log,
                                                         registry=self.registry)
                        await self.earlier.remember(key, built)
                        tr.mark(step, image=image.ref)
                    step = tr.Phase.PUSH
                    ref = built.ref
                    if self.push and self.registry is not None:
                        log(f"Pushing {built.ref}")
                        ref = (await self.pusher.push(built, self.registry, log=log)).ref
                        tr.mark(step, image=image.ref)
                        await self._refresh_pull_secret(log)
                except (BuildError, WrapError) as exc:
                    tr.mark(step, image=image.ref, error=True)
                    raise UpdateError(f"image {image.ref}: {exc}") from None
                cluster_ref = reg.cluster_ref_for_local(ref, self.registry)
                self._built[(image.ref, digest)] = (cluster_ref, ref)
                return cluster_ref, ref, digest
            step = tr.Phase.BUILD
            try:
                built = await self.custom.build(image, log=log, registry=self.registry,
                                                image_deps=deps)
                tr.mark(step, image=image.ref)
                step = tr.Phase.PUSH
                ref = built.ref
                if self.registry is not None and needs_push(
                        image, self.registry, cluster_shares_engine=not self.push):
                    ref = (await self.pusher.push(built, self.registry, log=log)).ref
                    tr.mark(step, image=image.ref)
            except BuildError as exc:
                tr.mark(step, image=image.ref, error=True)
                raise UpdateError(f"custom_build {image.ref}: {exc}") from None
            return reg.cluster_ref_for_local(ref, self.registry), ref, ""

    # -- objects
    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]:
        manifests = [inject(obj.manifest(), resource.injections, images,
                            resource=resource.name, key=obj.key) for obj in resource.objects]
        if self.pull_secret:
            manifests = [attach(m, self.pull_secret, hosts=self.pull_hosts,
                                namespace=self.kube.namespace) for m in manifests]
        return manifests

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.kube.server_side_apply(manifest)
        except KubeError as exc:
            raise UpdateError(str(exc)) from None

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        return await self.kube.get(ObjectRef.of(manifest))

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """Pods selected by the workload's own selector (a Pod is its own pod)."""
        namespace = workload.get("metadata", {}).get("namespace") or self.kube.namespace
        if workload.get("kind") == "Pod":
            pod = await self.kube.get(ObjectRef.of(workload))
            return [pod] if pod else []
        spec = workload.get("spec", {})
        if workload.get("kind") == "CronJob":
            return []
        labels = (spec.get("selector") or {}).get("matchLabels") or (
            (spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not labels:
            return []
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        return await self.kube.list_pods(namespace, selector)

    def watch(self, kind: str, namespace: str) -> WatchCache:
        """The session's one watch of a workload kind (or Pod) in a namespace, shared by
        every resource that reads its runtime there."""
        return self.kube.watch_cache(kind, namespace)

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult:
        """Run `argv` in a container (live update); KubeError when it cannot be started."""
        return await self.kube.exec(namespace, pod, container, argv, stdin)

    async def extract(self, namespace: str, pod: str, container: str,
                      archive: bytes) -> ExecResult:
        """Extract a live update's tar archive at / in a container; KubeError as `exec`."""
        return await self.kube.extract(namespace, pod, container, archive)

    async def follow_logs(self, namespace: str, pod: str, container: str, log: LogFn) -> None:
        """Show a container's log lines from where this session last left it."""
        cursor = self._log_cursors.setdefault((namespace, pod, container), LogCursor())
        async for line in self.kube.stream_log_lines(namespace, pod, container, cursor):
            cursor.advance(line.timestamp)  # only lines really shown move the cursor
            log(line.text)

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Callable[[int, str], None]) -> PortForwarder:
        forwarder = PortForwarder(self.kube, on_error=lambda error: on_error(
            forward.local_port, error.message))
        host = "127.0.0.1" if forward.host in ("localhost", "") else forward.host
        await forwarder.start(namespace, pod, forward.local_port, forward.container_port,
                              host=host)
        return forwarder

    async def close(self) -> None:
        try:
            if self.lock is not None:
                await self.lock.release()
        finally:
            await self.events.close()
            self.kube.close()

