"""A Kubernetes resource: build its images, apply its objects, watch its pods.

Update: build (and push) every image the resource deploys, inject the new refs, apply
the objects server-side; or, when the changed files allow it, live update the running
containers instead (copy the files in, run the `run` steps; see `live_update.py`).
Runtime: a monitor task reads the workloads and their pods from the session's shared
watches (one per kind and namespace, see `WatchCache`) on each change they report,
streams every container's logs (each line once, across restarts, reconnects and
reloads), shows the pods' events (warnings as alerts), turns crash loops and pull
errors into alerts, and keeps each port-forward on a ready pod, healthy only when it
connects (see `forwards.py`).
An update whose changed files left every image's inputs as deployed does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shlex
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import yaml

from devloop.engine import live_update as lu
from devloop.engine.forwards import ForwardKeeper
from devloop.engine.runner import RunnerHooks, RuntimeReport, UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.errors import KubeError
from devloop.k8s.events import PodEventRecord
from devloop.k8s.health import Assessment, Health, assess
from devloop.k8s.streams import ExecResult
from devloop.k8s.sync import Archive, SyncError, apply_in_container, tar_archive
from devloop.model import plan as p

# The runtime is read again on every change the watches report; without one, only while
# something waits on a clock (a stuck pod, a failing port-forward) and then this often.
RECHECK_SECONDS = 1.0
# A port-forward that does not connect yet is tried again sooner: right after its pod
# turns Ready the server in it is often still starting, and the resource (and whatever
# waits on it) is ready only once the forward connects.
FORWARD_RECHECK_SECONDS = 0.2
# After a change, a short pause gathers the others of the same burst (a rollout changes
# several pods and the workload within milliseconds) into one reading.
GATHER_SECONDS = 0.02
# How long each container of a ready pod must run ready, without a restart, before `ci`
# trusts it. A crash one second after Ready reaches the watch about a second later (the
# kubelet sees the exit on its next relist, then reports it), while Ready itself arrives at
# once; 2.5 s let such a crash through once on a loaded 2-core machine, so keep 2 s of margin.
STABLE_SECONDS = 4.0
# How long a pod may stay in a retried container error (CreateContainerConfigError...)
# before it counts as failed: long enough for the kubelet's caches to catch up.
STUCK_SECONDS = 30.0
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                  "Pod"}


class ClusterSeam(Protocol):
    """What a Kubernetes resource needs from the cluster and the image pipeline."""

    namespace: str  # where objects without a namespace go (the kube context's)

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any, *,
                           inputs: dict[str, str] | None = None) -> dict[str, str]: ...

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]: ...

    events: Any  # an EventHub: subscribe(namespace, pod, callback), unsubscribe, forget

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]: ...

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None: ...

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]: ...

    def watch(self, kind: str, namespace: str) -> Any: ...  # a shared WatchCache

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
        self._wake = asyncio.Event()  # set by the watches and forwards: read again
        self._forwards = ForwardKeeper(self.name, resource.port_forwards,
                                       forward=cluster.forward, hooks=hooks,
                                       wake=self._wake.set)
        self._published_pods: set[str] = set()
        # Which container instance (restart count) each log task follows.
        self._followed: dict[tuple[str, str], int] = {}
        self._subscribed: dict[str, str] = {}  # pod -> namespace, for its events
        self._events: dict[str, list[PodEventRecord]] = {}  # pod -> its events, in order
        # Content digest of each image's inputs as the running containers have them.
        self._digests: dict[str, str] = {}
        self._stuck_since: dict[str, float] = {}
        # When each container instance ((pod uid, container, restarts)) was first seen
        # running in a ready pod: `ci` trusts it STABLE_SECONDS later.
        self._ready_since: dict[tuple[str, str, int], float] = {}
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
        digests = await self.cluster.input_digests(self.plan, self.resource.image_refs)
        if files and self._deployed and not self._rebuild_next and self._unchanged(
                files, digests):
            # A save that rewrote the same bytes, a file written before the last build
            # read it: the running containers already have this content.
            self._log(f"{_count(len(files), 'changed file')}, same content as deployed: "
                      "nothing to update")
            self._pending.clear()
            return
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
                    self._digests = digests
                    return
        self._rebuild_next = True  # until a full update succeeds
        # The inputs as the build read them: a file written after this update started
        # but before its build (a local_resource writing into the context) is in them.
        self._digests = await self._full_update() or {}
        self._rebuild_next = False
        self._pending.clear()

    def _unchanged(self, files: tuple[str, ...], digests: dict[str, str]) -> bool:
        """Every changed file is in a build context, and every image is a docker_build
        whose inputs hash as deployed."""
        images = self._images()
        contexts = [os.path.join(os.path.abspath(i.context), "") for i in images
                    if isinstance(i, p.DockerBuild)]
        return bool(images) and all(
            any(os.path.abspath(f).startswith(c) for c in contexts) for f in files) and all(
            image.ref in digests and self._digests.get(image.ref) == digests[image.ref]
            for image in images)

    async def _full_update(self) -> dict[str, str]:
        """Build, apply, watch; returns the digests of the image inputs built."""
        inputs: dict[str, str] = {}
        images = await self.cluster.build_images(self.plan, self.resource.image_refs,
                                                 self._log, inputs=inputs)
        manifests = self.cluster.prepare(self.resource, images)
        self._log(f"Applying {len(manifests)} objects")
        for manifest in manifests:
            await self.cluster.apply(manifest)
            meta = manifest.get("metadata", {})
            self._log(f"  {manifest.get('kind')}/{meta.get('name')} applied")
        await self._watch_deployed(manifests, images,
                                   yaml.safe_dump_all(manifests, sort_keys=False))
        return inputs

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

    def _caches(self) -> list[tuple[dict[str, Any], str, Any]]:
        """(workload, its namespace, its kind's watch) for each workload."""
        return [(w, ns, self.cluster.watch(w["kind"], ns)) for w in self._workloads()
                for ns in [w.get("metadata", {}).get("namespace") or self.cluster.namespace]]

    async def _monitor_loop(self) -> None:
        workloads = self._caches()
        caches = {id(c): c for _, _, c in workloads}
        for _, namespace, _ in workloads:
            pods = self.cluster.watch("Pod", namespace)
            caches[id(pods)] = pods
        for cache in caches.values():
            cache.listen(self._wake.set)
        try:
            while True:
                self._wake.clear()
                try:
                    await self._observe(workloads)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a port-forward call failed: say so, look again
                    self._set(RuntimeReport(RuntimeState.PENDING,
                                            f"cannot read cluster: {exc}",
                                            details=self._report.details))
                period = self._clock_period()
                if period is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), period)
                else:
                    await self._wake.wait()
                await asyncio.sleep(GATHER_SECONDS)
        finally:
            for cache in caches.values():
                cache.unlisten(self._wake.set)

    def _clock_period(self) -> float | None:
        """How soon to read again without a change from the watches, if something may
        change by time alone (a failing port-forward is tried again, a stuck pod
        escalates, the cluster could not be read); None: only on a change."""
        if any(state not in ("active", "pending") for state in self._forwards.states().values()):
            return FORWARD_RECHECK_SECONDS
        if self._stuck_since or self._report.reason.startswith("cannot read cluster"):
            return RECHECK_SECONDS
        return None

    async def _observe(self, workloads: list[tuple[dict[str, Any], str, Any]] | None = None,
                       ) -> None:
        """Read the runtime from the watches (`workloads` as `_caches` gives them)."""
        workloads = self._caches() if workloads is None else workloads
        if not workloads:
            self._set(RuntimeReport(RuntimeState.NOT_APPLICABLE, "no workload",
                                    details=self._report.details))
            return
        assessments: list[Assessment] = []
        ready_pods: list[tuple[str, dict[str, Any]]] = []
        all_pods: list[list[dict[str, Any]]] = []
        present: set[str] = set()
        for workload, namespace, cache in workloads:
            pods_cache = self.cluster.watch("Pod", namespace)
            unread = next((c for c in (cache, pods_cache) if not c.synced), None)
            if unread is not None:
                self._set(RuntimeReport(
                    RuntimeState.PENDING, f"cannot read cluster: {unread.error}"
                    if unread.error else f"listing {unread.what}",
                    details=self._report.details))
                return
            name = workload.get("metadata", {}).get("name", "")
            live = cache.get(name)
            pods = _pods_of(workload, live, pods_cache)
            assessment = assess(workload["kind"], live, pods)
            all_pods.append(pods)
            assessments.append(assessment)
            by_name = {pod.get("metadata", {}).get("name", ""): pod for pod in pods}
            for pod_name, pod in by_name.items():
                present.add(pod_name)
                self._watch_events(namespace, pod_name)
                self._follow(namespace, pod)
            ready_pods += [(namespace, by_name[s.name]) for s in assessment.pods
                           if s.ready and not s.deleting and s.name in by_name]
        self._forget_pods(present)
        await self._forwards.keep(ready_pods)
        self._publish_pods(assessments)
        report = self._combine(assessments)
        verdict = self._forwards.verdict()
        if verdict.state is not None and report.state in (RuntimeState.OK,
                                                          RuntimeState.PENDING):
            report = RuntimeReport(verdict.state, verdict.reason, report.alerts, report.details)
        unsettled = any(_unsettled(pod) for pods in all_pods for pod in pods)
        report.stable_at = (math.inf if unsettled
                            else self._stable_at([pod for _, pod in ready_pods]))
        self._set(report)

    def _stable_at(self, ready: list[dict[str, Any]]) -> float:
        """When every running container of the ready pods will have run ready for
        STABLE_SECONDS without a restart (monotonic time), counting from when it was
        first seen so; a container started long before that counts from its start."""
        now, wall = time.monotonic(), time.time()
        seen: dict[tuple[str, str, int], float] = {}
        for pod in ready:
            uid = str(pod.get("metadata", {}).get("uid") or pod.get("metadata", {}).get("name"))
            for status in pod.get("status", {}).get("containerStatuses") or []:
                running = (status.get("state") or {}).get("running")
                if running is None:
                    continue
                key = (uid, str(status.get("name")), int(status.get("restartCount") or 0))
                since = self._ready_since.get(key, now)
                started = _epoch(str(running.get("startedAt") or ""))
                if started and wall - started > STABLE_SECONDS + 1.0:
                    since = min(since, now - (wall - started))  # up long before we looked
                seen[key] = since
        self._ready_since = seen
        return max((since + STABLE_SECONDS for since in seen.values()), default=0.0)

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
        details["events"] = [e.as_facet() for events in self._events.values() for e in events]
        alerts = [alert for a in assessments for alert in a.alerts]
        # Warnings about a pod that is not ready yet (failed mounts, probes, pulls,
        # scheduling) are what a person would look for; a ready pod's are history.
        unready = {s.name for a in assessments for s in a.pods if not s.ready and not s.deleting}
        for pod in sorted(unready):
            for event in self._events.get(pod, []):
                text = f"pod {pod}: {event.reason}: {event.message}"
                if event.warning and text not in alerts:
                    alerts.append(text)
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
        changed = (report.state, report.reason, report.alerts, report.stable_at) != (
            self._report.state, self._report.reason, self._report.alerts,
            self._report.stable_at)
        self._report = report
        if changed:
            self.hooks.changed()

    def _follow(self, namespace: str, pod: dict[str, Any]) -> None:
        name = pod.get("metadata", {}).get("name", "")
        if pod.get("status", {}).get("phase") == "Pending" and not pod.get("status", {}).get(
                "containerStatuses"):
            return
        statuses = {cs.get("name"): cs for cs in pod.get("status", {}).get(
            "containerStatuses") or []}
        for container in pod.get("spec", {}).get("containers", []):
            key = (name, container["name"])
            task = self._log_tasks.get(key)
            status = statuses.get(container["name"]) or {}
            restarts = int(status.get("restartCount") or 0)
            running = "running" in (status.get("state") or {})
            # A stream ends with its container; follow again only a new instance or a
            # running one (the cluster's cursor skips whatever was shown already).
            if task is None or task.done() and (running or restarts != self._followed.get(key)):
                self._followed[key] = restarts
                prefix = f"{name}:{container['name']}" if len(
                    pod["spec"]["containers"]) > 1 else name
                self._log_tasks[key] = asyncio.create_task(
                    self.cluster.follow_logs(namespace, name, container["name"],
                                             lambda text, prefix=prefix: self._log(
                                                 text, "runtime", prefix)),
                    name=f"logs:{self.name}:{name}:{container['name']}")

    def _watch_events(self, namespace: str, pod: str) -> None:
        if pod not in self._subscribed:
            self._subscribed[pod] = namespace
            self.cluster.events.subscribe(namespace, pod, self._on_event)

    def _on_event(self, event: PodEventRecord, fresh: bool) -> None:
        self._events.setdefault(event.pod, []).append(event)
        if fresh:
            self._log(event.line(), "runtime")  # the line names its pod
        if event.warning:
            # Alerts are assessed with the pods: read again (nothing else may change now).
            self._wake.set()

    def _forget_pods(self, present: set[str]) -> None:
        """Pods that are gone take their events with them."""
        for pod in [name for name in self._subscribed if name not in present]:
            self.cluster.events.forget(self._subscribed.pop(pod), pod)
            self._events.pop(pod, None)
        for key in [k for k in self._followed if k[0] not in present]:
            del self._followed[key]

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
        await self._forwards.stop()
        for pod, namespace in self._subscribed.items():
            self.cluster.events.unsubscribe(namespace, pod, self._on_event)
        self._subscribed.clear()


def _unsettled(pod: dict[str, Any]) -> bool:
    """A pod that is not being deleted, has not finished, and has a container that is not
    running and ready: a workload's own status may still count it ready (its controller
    reports later than the kubelet), so `ci` must not trust the resource yet."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return False
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return not statuses or any(
        not status.get("ready") or "running" not in (status.get("state") or {})
        for status in statuses)


def _pods_of(workload: dict[str, Any], live: dict[str, Any] | None,
             pods: Any) -> list[dict[str, Any]]:
    """The workload's pods in the namespace's pod watch: a Pod is its own pod; others
    select theirs by their own selector (or their template's labels)."""
    kind = workload.get("kind")
    if kind == "Pod":
        pod = pods.get(workload.get("metadata", {}).get("name", ""))
        return [pod] if pod else []
    if kind == "CronJob":
        return []
    spec = (live or {}).get("spec") or workload.get("spec", {})
    labels = (spec.get("selector") or {}).get("matchLabels") or (
        (spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return pods.select(dict(labels)) if labels else []


def _epoch(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)

