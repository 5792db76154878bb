"""The runtime of a deployed Kubernetes resource: its workloads, pods and port-forwards.

A monitor task reads the workloads and their pods from the session's shared watches (one
per kind and namespace, see `WatchCache`) on each change they report, publishes each pod
as a `pod` object, has its containers' logs and events streamed (`k8s_pods.PodStreams`),
turns crash loops, pull errors and lasting container errors into alerts, and keeps each
port-forward on a ready pod, healthy only when it connects (`forwards.ForwardKeeper`).
The resource's `RuntimeReport` combines all of it, with when `ci` may trust it.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime
from typing import Any

from devloop.engine.forwards import ForwardKeeper
from devloop.engine.k8s_pods import PodStreams
from devloop.engine.k8s_seam import ClusterSeam, workloads_of
from devloop.engine.runner import RunnerHooks, RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.engine.tasks import cancel_and_wait, resource_reporter, spawn
from devloop.k8s.health import Assessment, Health, assess
from devloop.model import kinds as k
from devloop.model import plan as p
from devloop.model import trace as tr

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
POD_KIND = k.POD.name

# (workload, its namespace, its kind's watch)
_Watched = tuple[dict[str, Any], str, Any]


class K8sMonitor:
    def __init__(self, resource: p.Resource, *, cluster: ClusterSeam,
                 hooks: RunnerHooks) -> None:
        self.name = resource.name
        self.cluster = cluster
        self.hooks = hooks
        self.applied: list[dict[str, Any]] = []  # the objects deployed, as applied
        self._report = RuntimeReport(RuntimeState.PENDING, "not deployed yet")
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # set by the watches, streams and forwards: read again
        self.forwards = ForwardKeeper(self.name, resource.port_forwards,
                                      forward=cluster.forward, hooks=hooks,
                                      wake=self._wake.set)
        self.pods = PodStreams(self.name, cluster=cluster, wake=self._wake.set,
                               log=self._pod_log, on_error=resource_reporter(hooks, self.name))
        self._published_pods: set[str] = set()
        self._stuck_since: dict[str, float] = {}
        # When each container instance ((pod uid, container, restarts)) was first seen
        # running in a ready pod: `ci` trusts it STABLE_SECONDS later.
        self._ready_since: dict[tuple[str, str, int], float] = {}

    def runtime(self) -> RuntimeReport:
        return self._report

    def _pod_log(self, text: str, prefix: str) -> None:
        tracer = tr.current()  # the update's trace: its first new log line
        if tracer is not None:
            tracer.log_line(prefix.split(":", 1)[0])
        self.hooks.log(self.name, text, "runtime", prefix)

    async def watch(self, manifests: list[dict[str, Any]], applied_yaml: str) -> None:
        """After a full deploy: watch what runs now from scratch."""
        self.applied = manifests
        self._report = RuntimeReport(RuntimeState.PENDING, "waiting for pods", details={
            "appliedYaml": applied_yaml})
        self.hooks.changed()
        await self.restart()

    async def restart(self) -> None:
        """(Re)start the monitor task on the objects in `applied`."""
        await cancel_and_wait(self._task)
        self._task = spawn(self._loop(), name=f"monitor:{self.name}", resource=self.name,
                           on_error=resource_reporter(self.hooks, self.name))

    def _caches(self) -> list[_Watched]:
        return [(w, ns, self.cluster.watch(w["kind"], ns)) for w in workloads_of(self.applied)
                for ns in [w.get("metadata", {}).get("namespace") or self.cluster.namespace]]

    async def _loop(self) -> None:
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
                    await self.observe(workloads)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a port-forward call failed: say so, look again
                    self._set(RuntimeReport(RuntimeState.PENDING,
                                            f"cannot read cluster: {exc}",
                                            details=self._report.details))
                period = self._clock_period()
                if period is not None:
                    await wake_or_timeout(self._wake, period)
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
        if any(state not in ("active", "pending") for state in self.forwards.states().values()):
            return FORWARD_RECHECK_SECONDS
        if self._stuck_since or self._report.reason.startswith("cannot read cluster"):
            return RECHECK_SECONDS
        return None

    async def observe(self, workloads: list[_Watched] | None = None) -> None:
        """Read the runtime from the watches (by default, of the workloads `applied`)."""
        workloads = self._caches() if workloads is None else workloads
        if not workloads:
            self._set(RuntimeReport(RuntimeState.NOT_APPLICABLE, "no workload",
                                    details=self._report.details))
            self._traced(rolled_out=True, ready=True, workloads=[])
            return
        assessments: list[Assessment] = []
        ready_pods: list[tuple[str, dict[str, Any]]] = []
        running_pods: list[tuple[str, dict[str, Any]]] = []  # running, not ready yet
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
                self.pods.follow(namespace, pod)
            ready_pods += [(namespace, by_name[s.name]) for s in assessment.pods
                           if s.ready and not s.deleting and s.name in by_name]
            running_pods += [(namespace, by_name[s.name]) for s in assessment.pods
                             if not s.ready and not s.deleting and s.name in by_name and (
                                 s.phase == "Running" or s.phase == "Pending" and
                                 self.pods.started(by_name[s.name]))]
        self.pods.forget(present)
        # The stability clock starts when the watch shows a container ready, not after the
        # port-forward probe below (which waits for the pod's port): the two overlap.
        unsettled = any(_unsettled(pod) for pods in all_pods for pod in pods)
        stable_at = math.inf if unsettled else self._stable_at([pod for _, pod in ready_pods])
        await self.forwards.keep(ready_pods, running_pods)
        self._publish_pods(assessments)
        report = self._combine(assessments)
        rolled_out = report.state == RuntimeState.OK  # the pods alone, for the trace
        verdict = self.forwards.verdict()
        if verdict.state is not None and report.state in (RuntimeState.OK,
                                                          RuntimeState.PENDING):
            report = RuntimeReport(verdict.state, verdict.reason, report.alerts, report.details,
                                   events=report.events)
        report.stable_at = stable_at
        self._set(report)
        self._traced(rolled_out=rolled_out, ready=report.state == RuntimeState.OK,
                     workloads=workloads)

    @staticmethod
    def _traced(*, rolled_out: bool, ready: bool, workloads: list[_Watched]) -> None:
        """The update's trace: the rollout and readiness, once the watches show the
        generation applied."""
        tracer = tr.current()
        if tracer is not None:
            names = [(str(w.get("kind")), str(w.get("metadata", {}).get("name", "")), cache)
                     for w, _, cache in workloads]
            tracer.observed(rolled_out=rolled_out, ready=ready, generations={
                (kind, name): int(((cache.get(name) or {}).get("metadata") or {}).get(
                    "generation") or 0) for kind, name, cache in names})

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
                self.hooks.publish(POD_KIND, pod.name, k.PodSpec(self.name).to_json(),
                                   k.PodStatus(
                                       phase=pod.phase, ready=pod.ready, restarts=pod.restarts,
                                       problem=pod.problem,
                                       last_termination=pod.last_termination,
                                       containers=pod.containers, created=pod.created,
                                       deleting=pod.deleting).to_json())
        for name in self._published_pods - seen:
            self.hooks.delete(POD_KIND, name)
        self._published_pods = seen

    def _combine(self, assessments: list[Assessment]) -> RuntimeReport:
        details = dict(self._report.details)
        details["pods"] = [{"name": s.name, "phase": s.phase, "ready": s.ready,
                            "restarts": s.restarts, "lastTermination": s.last_termination,
                            "problem": s.problem} for a in assessments for s in a.pods]
        details["events"] = self.pods.facets()
        alerts = [alert for a in assessments for alert in a.alerts]
        # Warnings about a pod that is not ready yet (failed mounts, probes, pulls,
        # scheduling) are what a person would look for; a ready pod's are history.
        unready = {s.name for a in assessments for s in a.pods if not s.ready and not s.deleting}
        events: dict[str, dict[str, object]] = {}
        for pod in sorted(unready):
            for event in self.pods.events_of(pod):
                text = f"pod {pod}: {event.reason}: {event.message}"
                if event.warning and text not in alerts:
                    alerts.append(text)
                    events[text] = event.as_facet()
        for assessment in assessments:
            if assessment.health == Health.ERROR:
                return RuntimeReport(RuntimeState.ERROR, assessment.reason, alerts, details,
                                     events=events)
        stuck = [a.stuck for a in assessments if a.stuck]
        now = time.monotonic()
        self._stuck_since = {text: self._stuck_since.get(text, now) for text in stuck}
        for text, since in self._stuck_since.items():
            if now - since >= STUCK_SECONDS:
                return RuntimeReport(RuntimeState.ERROR, text, alerts + [text], details,
                                     events=events)
        for assessment in assessments:
            if assessment.health == Health.PENDING:
                return RuntimeReport(RuntimeState.PENDING, assessment.reason, alerts, details,
                                     events=events)
        return RuntimeReport(RuntimeState.OK, "ready", alerts, details, events=events)

    def _set(self, report: RuntimeReport) -> None:
        changed = (report.state, report.reason, report.alerts, report.stable_at) != (
            self._report.state, self._report.reason, self._report.alerts,
            self._report.stable_at)
        self._report = report
        if changed:
            self.hooks.changed()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await self.pods.stop()
        await self.forwards.stop()


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


async def wake_or_timeout(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` pass. Not `wait_for(event.wait(), ...)`: in
    Python 3.11 that loses the task's cancellation when the event is set just as the task
    is cancelled, and a monitor that is never stopped keeps its restart waiting forever."""
    waiter = spawn(event.wait(), name="wake-or-timeout")
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()
