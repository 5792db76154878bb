"""Re-sync live-updated files into a container that restarted or a pod that replaced one.

A live update copies files into running containers; a container that restarts (killed,
crashed, its pod deleted and recreated) starts again from the image and so runs the old
code, and nothing would say so until the next change fell back to a rebuild. The
`Resyncer` of a Kubernetes resource remembers every file live updated since the last full
deploy, watches the resource's pods (the session's shared pod watch), and as soon as a
container of the deployed image runs without them, copies them in again (their content
on disk now, deletions included) and runs the image's `run` steps, saying so in the log
and with an alert until it is done. It holds `lock` while it works; the runner holds it
during an update, so a re-sync and an update of one resource never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from devloop.engine import live_update as lu
from devloop.engine.alerts import ALERT_KIND, Alert, AlertType, alert_id, raise_alert
from devloop.engine.cluster_health import until_reachable
from devloop.engine.k8s_live import LiveUpdater, _LiveWork, count
from devloop.engine.k8s_seam import ClusterSeam
from devloop.engine.runner import RunnerHooks, UpdateError
from devloop.engine.tasks import resource_reporter, spawn
from devloop.k8s.errors import KubeError
from devloop.k8s.sync import SyncError

# Pod changes arrive in bursts (a new pod's statuses change within milliseconds): a short
# pause gathers them into one look.
GATHER_SECONDS = 0.05


def stale_containers(containers: list[lu.Container], deployed: set[str],
                     synced: lu.Synced | None) -> list[lu.Container]:
    """The running containers of the deployed images that lack the live-updated files: in
    a pod that appeared since the live updates, or restarted since they got the files."""
    if synced is None:
        return []
    stale = []
    for container in containers:
        if not container.running or container.image not in deployed:
            continue
        before = synced.restarts.get(container.key)
        if (container.namespace, container.pod) not in synced.pods or (
                before is not None and before != container.restarts):
            stale.append(container)
    return stale


def pods_of(workload: dict[str, Any], pods: Any) -> list[dict[str, Any]]:
    """The workload's pods in a shared pod watch (a Pod is its own pod)."""
    meta = workload.get("metadata", {})
    if workload.get("kind") == "Pod":
        pod = pods.get(meta.get("name", ""))
        return [pod] if pod else []
    if workload.get("kind") == "CronJob":
        return []
    spec = workload.get("spec", {})
    labels = (spec.get("selector") or {}).get("matchLabels") or (
        (spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return list(pods.select(dict(labels))) if labels else []


class Resyncer:
    def __init__(self, name: str, live: LiveUpdater, cluster: ClusterSeam, *,
                 hooks: RunnerHooks, log: Callable[..., None]) -> None:
        self.name = name
        self.lock = asyncio.Lock()
        self._live = live
        self._cluster = cluster
        self._hooks = hooks
        self._log = log  # (text, source="build", prefix="")
        self._files: set[str] = set()  # live updated since the last full deploy
        self._caches: list[Any] = []
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._alert = ""

    # -- what the runner tells
    @contextlib.asynccontextmanager
    async def updating(self) -> AsyncIterator[None]:
        """Around an update of the resource: wait while the cluster cannot be reached,
        never run beside a re-sync, and turn a cluster call that failed into the update's
        error (not an internal error with a traceback)."""
        await until_reachable(self._cluster, self._log)
        async with self.lock:
            try:
                yield
            except KubeError as exc:
                raise UpdateError(exc.message) from None

    def synced(self, files: tuple[str, ...]) -> None:
        """A live update put `files` into the running containers."""
        self._files.update(files)
        self._listen()

    def deployed(self) -> None:
        """A full deploy: every container runs the new image, which has every file."""
        self._files.clear()
        self._set_alert("")
        self._unlisten()

    async def stop(self) -> None:
        self._unlisten()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_alert("")

    # -- watching
    def _namespaces(self) -> set[str]:
        return {w.get("metadata", {}).get("namespace") or self._cluster.namespace
                for w in self._live._workloads}

    def _listen(self) -> None:
        if self._caches:
            return
        for namespace in sorted(self._namespaces()):
            cache = self._cluster.watch("Pod", namespace)
            cache.listen(self._changed)
            self._caches.append(cache)

    def _unlisten(self) -> None:
        for cache in self._caches:
            cache.unlisten(self._changed)
        self._caches = []

    def _changed(self) -> None:
        if not self._files:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = spawn(self._run(), name=f"resync:{self.name}", resource=self.name,
                           on_error=resource_reporter(self._hooks, self.name))

    def _containers(self) -> list[lu.Container]:
        containers: list[lu.Container] = []
        for workload in self._live._workloads:
            namespace = workload.get("metadata", {}).get("namespace") or self._cluster.namespace
            cache = self._cluster.watch("Pod", namespace)
            containers += lu.containers_of(pods_of(workload, cache), namespace)
        return containers

    async def _run(self) -> None:
        again = True
        while again:
            self._again = False
            await asyncio.sleep(GATHER_SECONDS)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let a re-sync end silently
                self._log(f"Re-sync failed: {exc}")
            again = self._again

    async def check(self) -> bool:
        """Re-sync every container that lacks the live-updated files; True if it did."""
        async with self.lock:
            if not self._files:
                return False
            containers = self._containers()
            stale = stale_containers(containers, set(self._live.deployed.values()),
                                     self._live._synced)
            if not stale:
                return False
            return await self._resync(stale, containers)

    async def _resync(self, stale: list[lu.Container], containers: list[lu.Container]) -> bool:
        files = tuple(sorted(self._files))
        which = ", ".join(str(c) for c in stale)
        self._set_alert(f"{which} restarted after a live update and runs the image's old "
                        f"code: re-syncing {count(len(files), 'file')}")
        self._log(f"Container {which} restarted after a live update (it started from the "
                  f"image): re-syncing {count(len(files), 'live-updated file')}")
        decision = lu.decide(self._live.images(), self._live.deployed, files,
                             base=os.path.dirname(self._live.plan.tiltfile))
        if isinstance(decision, lu.FullBuild):
            self._log(f"Cannot re-sync: {decision.reason}; the next change rebuilds")
            return False
        items = [(update, [c for c in stale if c.image == self._live.deployed.get(
            update.image_ref)]) for update in decision.images]
        work = _LiveWork([(u, targets) for u, targets in items if targets],
                         frozenset((c.namespace, c.pod) for c in containers))
        started = time.monotonic()
        try:
            await self._live._update(files, work, started)
        except (SyncError, UpdateError, KubeError) as exc:
            self._log(f"Re-sync into {which} failed: {exc}. The next change rebuilds.")
            return False
        self._log(f"Re-synced {count(len(files), 'file')} into {which}: it runs the code "
                  "on disk again")
        self._set_alert("")
        return True

    def _set_alert(self, text: str) -> None:
        if text == self._alert:
            return
        if text:
            raise_alert(self._hooks.publish, Alert(AlertType.RESYNC, self.name, text))
        else:
            self._hooks.delete(ALERT_KIND, alert_id(AlertType.RESYNC, self.name))
        self._alert = text
