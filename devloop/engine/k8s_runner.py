"""A Kubernetes resource: build its images, apply its objects, watch its pods.

Update: build (and push) every image the resource deploys, inject the new refs, apply
the objects server-side; or, when the changed files allow it, live update the running
containers instead (copy the files in, run the `run` steps; see `live_update.py`).
Runtime: a monitor task reads the workloads and their pods, streams every container's
logs (resuming after restarts), turns crash loops and pull errors into alerts, and keeps
each port-forward pointed at a ready pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import time
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from devloop.engine import live_update as lu
from devloop.engine.runner import RunnerHooks, RuntimeReport, UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.errors import KubeError
from devloop.k8s.health import Assessment, Health, assess
from devloop.k8s.streams import ExecResult
from devloop.k8s.sync import Archive, SyncError, apply_in_container, tar_archive
from devloop.tiltfile import plan as p

MONITOR_PERIOD_SECONDS = 1.0
# How long a pod may stay in a retried container error (CreateContainerConfigError...)
# before it counts as failed: long enough for the kubelet's caches to catch up.
STUCK_SECONDS = 30.0
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                  "Pod"}


class ClusterSeam(Protocol):
    """What a Kubernetes resource needs from the cluster and the image pipeline."""

    namespace: str  # where objects without a namespace go (the kube context's)

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...],
                           log: Any) -> dict[str, str]: ...

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]: ...

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None: ...

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]: ...

    async def follow_logs(self, namespace: str, pod: str, container: str,
                          log: Any) -> None: ...

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult: ...

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Any) -> Any: ...


@dataclass(frozen=True)
class _LiveWork:
    """A live update to do: each image's files and steps with its target containers, and
    every pod of the resource at the time (see `live_update.Synced`)."""

    items: list[tuple[lu.ImageUpdate, list[lu.Container]]]
    pods: frozenset[tuple[str, str]]


class K8sRunner:
    def __init__(self, resource: p.Resource, *, plan: p.Plan, cluster: ClusterSeam,
                 hooks: RunnerHooks) -> None:
        self.name = resource.name
        self.resource = resource
        self.plan = plan
        self.cluster = cluster
        self.hooks = hooks
        self.applied: list[dict[str, Any]] = []
        self._report = RuntimeReport(RuntimeState.PENDING, "not deployed yet")
        self._monitor: asyncio.Task[None] | None = None
        self._log_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._forwards: dict[int, tuple[str, Any]] = {}
        self._published_pods: set[str] = set()
        self._stuck_since: dict[str, float] = {}
        # Live update state: the refs deployed (image ref -> reference in the pods), the
        # changed files not yet applied anywhere, and what live updates touched since.
        self._deployed: dict[str, str] = {}
        self._rebuild_next = False
        self._pending: set[str] = set()
        self._synced: lu.Synced | None = None
        self._live_updates = 0

    def _log(self, text: str, source: str = "build", prefix: str = "") -> None:
        self.hooks.log(self.name, text, source, prefix)

    async def update(self, changed_files: tuple[str, ...]) -> None:
        # Files of a live update that failed stay pending: the next one copies them again.
        self._pending.update(changed_files)
        files = tuple(sorted(self._pending))
        started = time.monotonic()
        if self._deployed and not self._rebuild_next:
            choice = await self._choose(files)
            if isinstance(choice, lu.FullBuild):
                if self._has_live_update():
                    self._log(f"Will not live update: {choice.reason}. Full rebuild.")
                    self._publish_live_update(files, [], [], started, "fallback",
                                              choice.reason)
            else:
                try:
                    await self._live_update(files, choice, started)
                except SyncError as exc:
                    self._log(f"Live update failed: {exc}. Falling back to a full rebuild.")
                else:
                    self._pending.clear()
                    return
        self._rebuild_next = True  # until a full update succeeds
        await self._full_update()
        self._rebuild_next = False
        self._pending.clear()

    async def _full_update(self) -> None:
        images = await self.cluster.build_images(self.plan, self.resource.image_refs,
                                                 self._log)
        manifests = self.cluster.prepare(self.resource, images)
        self._log(f"Applying {len(manifests)} objects")
        for manifest in manifests:
            await self.cluster.apply(manifest)
            meta = manifest.get("metadata", {})
            self._log(f"  {manifest.get('kind')}/{meta.get('name')} applied")
        await self._watch_deployed(manifests, images,
                                   yaml.safe_dump_all(manifests, sort_keys=False))

    async def _watch_deployed(self, manifests: list[dict[str, Any]], images: dict[str, str],
                              applied_yaml: str) -> None:
        """After a full deploy: remember what runs where and watch it from scratch."""
        self.applied = manifests
        self._deployed = {ref: images[ref] for ref in self.resource.image_refs if ref in images}
        self._synced = None
        self._report = RuntimeReport(RuntimeState.PENDING, "waiting for pods", details={
            "appliedYaml": applied_yaml})
        self.hooks.changed()
        await self._restart_monitor()

    # -- live update
    def _images(self) -> list[p.ImageTarget]:
        """The resource's images with their image_deps."""
        return self.plan.images_for(self.resource.image_refs)

    def _has_live_update(self) -> bool:
        return any(image.live_update for image in self._images())

    async def _choose(self, files: tuple[str, ...]) -> lu.FullBuild | _LiveWork:
        """Which containers get which files and steps, or why the image must be rebuilt."""
        decision = lu.decide(self._images(), self._deployed, files,
                             base=os.path.dirname(self.plan.tiltfile))
        if isinstance(decision, lu.FullBuild):
            return decision
        containers: list[lu.Container] = []
        for workload in self._workloads():
            namespace = workload.get("metadata", {}).get("namespace") or self.cluster.namespace
            containers += lu.containers_of(await self.cluster.pods_of(workload), namespace)
        work: list[tuple[lu.ImageUpdate, list[lu.Container]]] = []
        for update in decision.images:
            targets = lu.targets_or_reason(containers, self._deployed[update.image_ref],
                                           self._synced)
            if isinstance(targets, lu.FullBuild):
                return targets
            work.append((update, targets))
        return _LiveWork(work, frozenset((c.namespace, c.pod) for c in containers))

    async def _live_update(self, files: tuple[str, ...], work: _LiveWork,
                           started: float) -> None:
        steps: list[dict[str, Any]] = []
        names = [str(c) for _, targets in work.items for c in targets]
        restarts = dict(self._synced.restarts) if self._synced else {}
        base = os.path.dirname(self.plan.tiltfile)
        try:
            for update, targets in work.items:
                is_input = lu.inputs_of(self.plan.image(update.image_ref), base)
                archive = await asyncio.to_thread(
                    tar_archive, [(c.local, c.remote) for c in update.copies],
                    lambda path, is_input=is_input: not is_input(path))
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
            self._publish_live_update(files, names, steps, started, "fallback", str(exc))
            raise
        except UpdateError as exc:
            self._publish_live_update(files, names, steps, started, "failed", str(exc))
            raise
        elapsed = _ms(started)
        self._log(f"Live update: done in {elapsed} ms ({_count(len(files), 'changed file')}, "
                  f"{_count(len(names), 'container')})")
        self._publish_live_update(files, names, steps, started, "ok", "")

    async def _update_container(self, update: lu.ImageUpdate, archive: Archive,
                                container: lu.Container, steps: list[dict[str, Any]]) -> None:
        started = time.monotonic()
        await apply_in_container(self.cluster.exec, container.namespace, container.pod,
                                 container.name, archive=archive, deletes=update.deletes)
        elapsed = _ms(started)
        done = [text for count, text in (
            (archive.files, f"synced {_count(archive.files, 'file')}"),
            (len(update.deletes), f"deleted {_count(len(update.deletes), 'path')}")) if count]
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
            output = (result.stdout + result.stderr).decode(errors="replace").rstrip()
            for line in output.splitlines():
                self._log(line, prefix=str(container))
            steps.append({"step": "run", "command": shown, "container": str(container),
                          "exitCode": result.exit_code, "ms": _ms(started)})
            if result.exit_code != 0:
                raise UpdateError(f"live update: `{shown}` failed in {container} with exit "
                                  f"code {result.exit_code}" + (f":\n{output}" if output
                                                                else ""))

    def _publish_live_update(self, files: tuple[str, ...], containers: list[str],
                             steps: list[dict[str, Any]], started: float, result: str,
                             error: str) -> None:
        self._live_updates += 1
        self.hooks.publish("liveupdate", f"{self.name}-{self._live_updates}", {
            "resource": self.name, "files": list(files), "containers": containers}, {
            "steps": steps, "duration": round(time.monotonic() - started, 3),
            "result": result, "error": error})

    async def _restart_monitor(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        self._monitor = asyncio.create_task(self._monitor_loop(), name=f"monitor:{self.name}")

    def _workloads(self) -> list[dict[str, Any]]:
        return [m for m in self.applied if m.get("kind") in WORKLOAD_KINDS]

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self._observe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a flaky API call: say so, look again next period
                self._set(RuntimeReport(RuntimeState.PENDING, f"cannot read cluster: {exc}",
                                        details=self._report.details))
            await asyncio.sleep(MONITOR_PERIOD_SECONDS)

    async def _observe(self) -> None:
        workloads = self._workloads()
        if not workloads:
            self._set(RuntimeReport(RuntimeState.NOT_APPLICABLE, "no workload",
                                    details=self._report.details))
            return
        assessments: list[Assessment] = []
        ready_pods: list[tuple[str, str]] = []
        for workload in workloads:
            live = await self.cluster.read(workload)
            pods = await self.cluster.pods_of(workload)
            assessment = assess(workload["kind"], live, pods)
            assessments.append(assessment)
            namespace = workload.get("metadata", {}).get("namespace") or self.cluster.namespace
            for pod in pods:
                self._follow(namespace, pod)
            ready_pods += [(namespace, s.name) for s in assessment.pods
                           if s.ready and not s.deleting]
        await self._keep_forwards(ready_pods)
        self._publish_pods(assessments)
        self._set(self._combine(assessments))

    def _publish_pods(self, assessments: list[Assessment]) -> None:
        """Each pod as its own object in the store (kind `pod`), gone ones removed."""
        seen: set[str] = set()
        for assessment in assessments:
            for pod in assessment.pods:
                seen.add(pod.name)
                self.hooks.publish("pod", pod.name, {"resource": self.name}, {
                    "phase": pod.phase, "ready": pod.ready, "restarts": pod.restarts,
                    "problem": pod.problem, "lastTermination": pod.last_termination,
                    "containers": list(pod.containers), "created": pod.created,
                    "deleting": pod.deleting})
        for name in self._published_pods - seen:
            self.hooks.delete("pod", name)
        self._published_pods = seen

    def _combine(self, assessments: list[Assessment]) -> RuntimeReport:
        details = dict(self._report.details)
        details["pods"] = [{"name": s.name, "phase": s.phase, "ready": s.ready,
                            "restarts": s.restarts, "lastTermination": s.last_termination,
                            "problem": s.problem} for a in assessments for s in a.pods]
        alerts = [alert for a in assessments for alert in a.alerts]
        for assessment in assessments:
            if assessment.health == Health.ERROR:
                return RuntimeReport(RuntimeState.ERROR, assessment.reason, alerts, details)
        stuck = [a.stuck for a in assessments if a.stuck]
        now = time.monotonic()
        self._stuck_since = {text: self._stuck_since.get(text, now) for text in stuck}
        for text, since in self._stuck_since.items():
            if now - since >= STUCK_SECONDS:
                return RuntimeReport(RuntimeState.ERROR, text, alerts + [text], details)
        for assessment in assessments:
            if assessment.health == Health.PENDING:
                return RuntimeReport(RuntimeState.PENDING, assessment.reason, alerts, details)
        return RuntimeReport(RuntimeState.OK, "ready", alerts, details)

    def _set(self, report: RuntimeReport) -> None:
        changed = (report.state, report.reason, report.alerts) != (
            self._report.state, self._report.reason, self._report.alerts)
        self._report = report
        if changed:
            self.hooks.changed()

    def _follow(self, namespace: str, pod: dict[str, Any]) -> None:
        name = pod.get("metadata", {}).get("name", "")
        if pod.get("status", {}).get("phase") == "Pending" and not pod.get("status", {}).get(
                "containerStatuses"):
            return
        for container in pod.get("spec", {}).get("containers", []):
            key = (name, container["name"])
            task = self._log_tasks.get(key)
            if task is None or task.done():
                prefix = f"{name}:{container['name']}" if len(
                    pod["spec"]["containers"]) > 1 else name
                self._log_tasks[key] = asyncio.create_task(
                    self.cluster.follow_logs(namespace, name, container["name"],
                                             lambda text, prefix=prefix: self._log(
                                                 text, "runtime", prefix)),
                    name=f"logs:{self.name}:{name}:{container['name']}")

    async def _keep_forwards(self, ready_pods: list[tuple[str, str]]) -> None:
        if not self.resource.port_forwards:
            return
        current = {pod for _, pod in ready_pods}
        for forward in self.resource.port_forwards:
            existing = self._forwards.get(forward.local_port)
            if existing is not None and existing[0] in current:
                continue
            if existing is not None:
                with contextlib.suppress(Exception):
                    await existing[1].stop()
                del self._forwards[forward.local_port]
            if not ready_pods:
                continue
            namespace, pod = ready_pods[0]
            try:
                handle = await self.cluster.forward(namespace, pod, forward, self._forward_error)
            except Exception as exc:
                self._log(f"port-forward {forward.local_port}:{forward.container_port} "
                          f"failed: {exc}", "runtime")
                continue
            self._forwards[forward.local_port] = (pod, handle)
            self.hooks.delete("alert", f"{self.name}-portforward-{forward.local_port}")
            self.hooks.publish("portforward", f"{self.name}-{forward.local_port}", {
                "resource": self.name, "localPort": forward.local_port,
                "containerPort": forward.container_port, "host": forward.host,
                "name": forward.name}, {"pod": pod, "namespace": namespace, "state": "active",
                                        "url": f"http://{forward.host}:{forward.local_port}/"})
            self._log(f"Forwarding http://{forward.host}:{forward.local_port} -> "
                      f"{pod}:{forward.container_port}", "runtime")

    def _forward_error(self, local_port: int, message: str) -> None:
        self._log(f"port-forward {local_port}: {message}", "runtime")
        self.hooks.publish("alert", f"{self.name}-portforward-{local_port}",
                           {"resource": self.name}, {"message": f"port-forward {local_port} "
                                                                f"down: {message}"})

    def runtime(self) -> RuntimeReport:
        return self._report

    async def stop(self) -> None:
        tasks = list(self._log_tasks.values())
        if self._monitor is not None:
            tasks.append(self._monitor)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, handle in self._forwards.values():
            with contextlib.suppress(Exception):
                await handle.stop()
        self._forwards.clear()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)

