"""Live updating a deployed Kubernetes resource: copy changed files into its containers.

When the changed files allow it (see `live_update.decide`), the running containers get
the files and the `run` steps instead of a rebuild; each live update becomes a
`liveupdate` object. A live update that cannot be done (a file outside every sync, a
container not running what was deployed) says why and leaves the full update to
`K8sRunner`; one that fails half-way marks the containers it touched (`live_update.Synced`)
so the next one does not trust them.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devloop.build.restart_wrapper import touch_command
from devloop.engine import live_update as lu
from devloop.engine.k8s_deploy import Deployed
from devloop.engine.k8s_seam import ClusterSeam, workloads_of
from devloop.engine.runner import RunnerHooks, UpdateError
from devloop.k8s.errors import KubeError
from devloop.k8s.sync import Archive, SyncError, apply_in_container, tar_archive
from devloop.model import kinds as k
from devloop.model import plan as p
from devloop.model import trace as tr

LIVE_UPDATE_KIND = k.LIVE_UPDATE.name
# A change saved while a target container is still being created waits this long for it
# to run (the image is already pulled or being pulled from the local registry; seconds
# at most), asking the API server again every START_POLL_SECS, before it rebuilds instead.
START_WAIT_SECS = 60.0
START_POLL_SECS = 0.2


@dataclass(frozen=True)
class _LiveWork:
    """A live update to do: each image's files and steps with its target containers, and
    every pod of the resource at the time (see `live_update.Synced`)."""

    items: list[tuple[lu.ImageUpdate, list[lu.Container]]]
    pods: frozenset[tuple[str, str]]


class LiveUpdater:
    def __init__(self, resource: p.Resource, *, plan: p.Plan, cluster: ClusterSeam,
                 hooks: RunnerHooks, log: Callable[..., None]) -> None:
        self.name = resource.name
        self.resource = resource
        self.plan = plan
        self.cluster = cluster
        self.hooks = hooks
        self._log = log  # (text, source="build", prefix="")
        # The refs deployed (image ref -> reference in the pods), the workloads running
        # them, and what live updates touched since the last full deploy.
        self.deployed: dict[str, str] = {}
        self._workloads: list[dict[str, Any]] = []
        self._synced: lu.Synced | None = None
        self._count = 0

    def images(self) -> list[p.ImageTarget]:
        """The resource's images with their image_deps."""
        return self.plan.images_for(self.resource.image_refs)

    def deployed_by(self, deployed: Deployed) -> None:
        """A full deploy replaced every container: nothing live updated runs any more."""
        self.deployed = {ref: deployed.images[ref] for ref in self.resource.image_refs
                         if ref in deployed.images}
        self._workloads = workloads_of(deployed.manifests)
        self._synced = None

    async def try_update(self, files: tuple[str, ...], started: float) -> bool:
        """Live update the running containers with `files`; False when a full update must
        be done instead (the log says why). Raises UpdateError when a `run` step fails."""
        choice = await self._choose(files)
        if isinstance(choice, lu.FullBuild):
            if any(image.live_update for image in self.images()):
                self._log(f"Will not live update: {choice.reason}. Full rebuild.")
                self._publish(files, [], [], started, "fallback", choice.reason)
            return False
        try:
            await self._update(files, choice, started)
        except SyncError as exc:
            self._log(f"Live update failed: {exc}. Falling back to a full rebuild.")
            return False
        return True

    async def _choose(self, files: tuple[str, ...]) -> lu.FullBuild | _LiveWork:
        """Which containers get which files and steps, or why the image must be rebuilt;
        waits (up to START_WAIT_SECS) for a target container that is being started."""
        deadline: float | None = None
        while True:
            choice = await self._choose_now(files)
            if not isinstance(choice, lu.Starting):
                return choice
            now = time.monotonic()
            if deadline is None:
                deadline = now + START_WAIT_SECS
                self._log(f"Live update: waiting for container {choice.container} to start")
            elif now >= deadline:
                return lu.FullBuild(f"container {choice.container} did not start within "
                                    f"{START_WAIT_SECS:g} s")
            await asyncio.sleep(START_POLL_SECS)

    async def _choose_now(self, files: tuple[str, ...]
                          ) -> lu.FullBuild | lu.Starting | _LiveWork:
        """`_choose` on the pods as they are now."""
        decision = lu.decide(self.images(), self.deployed, files,
                             base=os.path.dirname(self.plan.tiltfile))
        if isinstance(decision, lu.FullBuild):
            return decision
        containers: list[lu.Container] = []
        for workload in self._workloads:
            namespace = workload.get("metadata", {}).get("namespace") or self.cluster.namespace
            containers += lu.containers_of(await self.cluster.pods_of(workload), namespace)
        work: list[tuple[lu.ImageUpdate, list[lu.Container]]] = []
        for update in decision.images:
            targets = lu.targets_or_reason(containers, self.deployed[update.image_ref],
                                           self._synced)
            if isinstance(targets, lu.FullBuild | lu.Starting):
                return targets
            work.append((update, targets))
        return _LiveWork(work, frozenset((c.namespace, c.pod) for c in containers))

    async def _update(self, files: tuple[str, ...], work: _LiveWork, started: float) -> None:
        steps: list[dict[str, Any]] = []
        names = [str(c) for _, targets in work.items for c in targets]
        restarts = dict(self._synced.restarts) if self._synced else {}
        base = os.path.dirname(self.plan.tiltfile)
        tr.mark(tr.Phase.PREPARE)  # hashing the inputs, finding the containers
        try:
            for update, targets in work.items:
                archive = await asyncio.to_thread(
                    tar_archive, [(c.local, c.remote) for c in update.copies],
                    _not(lu.inputs_of(self.plan.image(update.image_ref), base)))
                results = await asyncio.gather(*(
                    self._update_container(update, archive, c, steps) for c in targets),
                    return_exceptions=True)
                # Whatever happened, these containers may hold some of the new files now.
                self._synced = lu.Synced(work.pods, restarts | {
                    c.key: c.restarts for c in targets})
                restarts = dict(self._synced.restarts)
                errors = [r for r in results if isinstance(r, BaseException)]
                for error in errors:
                    if not isinstance(error, SyncError | UpdateError):
                        raise error
                for error in errors:  # a sync that failed needs the rebuild first
                    if isinstance(error, SyncError):
                        raise error
                if errors:
                    raise errors[0]
        except SyncError as exc:
            self._publish(files, names, steps, started, "fallback", str(exc))
            raise
        except UpdateError as exc:
            self._publish(files, names, steps, started, "failed", str(exc))
            raise
        elapsed = _ms(started)
        self._log(f"Live update: done in {elapsed} ms ({count(len(files), 'changed file')}, "
                  f"{count(len(names), 'container')})")
        self._publish(files, names, steps, started, "ok", "")

    async def _update_container(self, update: lu.ImageUpdate, archive: Archive,
                                container: lu.Container, steps: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        await apply_in_container(self.cluster.exec, container.namespace, container.pod,
                                 container.name, archive=archive, deletes=update.deletes,
                                 extract_fn=self.cluster.extract)
        tr.mark(tr.Phase.SYNC, container=str(container))
        elapsed = _ms(started)
        done = [text for n, text in (
            (archive.files, f"synced {count(archive.files, 'file')}"),
            (len(update.deletes), f"deleted {count(len(update.deletes), 'path')}")) if n]
        self._log(f"Live update: {' and '.join(done) or 'nothing to copy'} "
                  f"{'to' if archive.files else 'in'} {container} in {elapsed} ms")
        steps.append({"step": "sync", "container": str(container), "files": archive.files,
                      "deleted": len(update.deletes), "ms": elapsed})
        for run in update.runs:
            shown = run.command[2] if run.shell else shlex.join(run.command)
            if not run.echo_off:
                self._log(f"Live update: running `{shown}` in {container}")
            started = time.monotonic()
            try:
                result = await self.cluster.exec(container.namespace, container.pod,
                                                  container.name, list(run.command), None)
            except KubeError as exc:
                raise SyncError(f"run `{shown}` in {container}: {exc.message}") from None
            tr.mark(tr.Phase.RESTART if run.command == touch_command() else tr.Phase.RUN,
                    container=str(container), command=shown)
            output = (result.stdout + result.stderr).decode(errors="replace").rstrip()
            for line in output.splitlines():
                self._log(line, prefix=str(container))
            steps.append({"step": "run", "command": shown, "container": str(container),
                          "exitCode": result.exit_code, "ms": _ms(started)})
            if result.exit_code != 0:
                raise UpdateError(f"live update: `{shown}` failed in {container} with exit "
                                  f"code {result.exit_code}" + (f":\n{output}" if output
                                                                else ""))

    def _publish(self, files: tuple[str, ...], containers: list[str],
                 steps: list[dict[str, Any]], started: float, result: str, error: str) -> None:
        self._count += 1
        self.hooks.publish(LIVE_UPDATE_KIND, f"{self.name}-{self._count}", k.LiveUpdateSpec(
            resource=self.name, files=files, containers=tuple(containers)).to_json(),
            k.LiveUpdateStatus(steps=tuple(steps),
                               duration=round(time.monotonic() - started, 3),
                               result=result, error=error).to_json())


def _not(predicate: Callable[[str], bool]) -> Callable[[str], bool]:
    """What the image's ignore rules leave out of the archive: what is not an input."""
    return lambda path: not predicate(path)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
