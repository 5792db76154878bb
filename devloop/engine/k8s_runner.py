"""A Kubernetes resource: build its images, apply its objects, watch its pods.

Update: build (and push) every image the resource deploys, inject the new refs, apply
the objects server-side. Runtime: a monitor task reads the workloads and their pods,
streams every container's logs (resuming after restarts), turns crash loops and pull
errors into alerts, and keeps each port-forward pointed at a ready pod.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import yaml

from devloop.engine.runner import RunnerHooks, RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.health import Assessment, Health, assess
from devloop.tiltfile import plan as p

MONITOR_PERIOD_SECONDS = 1.0
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

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Any) -> Any: ...


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

    def _log(self, text: str, source: str = "build", prefix: str = "") -> None:
        self.hooks.log(self.name, text, source, prefix)

    async def update(self, changed_files: tuple[str, ...]) -> None:
        images = await self.cluster.build_images(self.plan, self.resource.image_refs,
                                                 self._log)
        manifests = self.cluster.prepare(self.resource, images)
        self._log(f"Applying {len(manifests)} objects")
        applied = []
        for manifest in manifests:
            applied.append(await self.cluster.apply(manifest))
            meta = manifest.get("metadata", {})
            self._log(f"  {manifest.get('kind')}/{meta.get('name')} applied")
        self.applied = manifests
        self._report = RuntimeReport(RuntimeState.PENDING, "waiting for pods", details={
            "appliedYaml": yaml.safe_dump_all(manifests, sort_keys=False)})
        self.hooks.changed()
        await self._restart_monitor()

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

