"""K8sRunner's runtime reading against a fake cluster: pod events, log follows, forwards."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from devloop.engine import k8s_monitor
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.runner import RunnerHooks
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.events import EventHub
from devloop.model import plan as p

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "ns"},
    "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


def pod_status(*, ready: bool, running: bool = True, restarts: int = 0) -> dict[str, Any]:
    state = {"running": {}} if running else {"terminated": {"exitCode": 0}}
    return {**POD, "status": {
        "phase": "Running" if running else "Succeeded",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "main", "ready": ready, "restartCount": restarts,
                               "state": state}]}}


class Silent:
    async def watch_pod_events(self, namespace: str) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


class Cluster:
    namespace = "ns"

    def __init__(self) -> None:
        self.events = EventHub(Silent(), since=0)
        self.live = pod_status(ready=False)
        self.follows: list[tuple[str, str]] = []
        self.watched = Watched(self)

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]:
        return {}

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any,
                           inputs: Any = None) -> dict:
        return {}

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]:
        return [dict(POD)]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return manifest

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        return self.live

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return [self.live]

    def watch(self, kind: str, namespace: str) -> Watched:
        return self.watched


    async def follow_logs(self, namespace: str, pod: str, container: str, log: Any) -> None:
        self.follows.append((pod, container))

    async def forward(self, *args: Any) -> Any:
        raise AssertionError("no port-forwards here")


class Watched:
    """The fake cluster's only watch: its one pod, which is also the workload."""

    synced, error, what = True, "", "pods in ns"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.listeners: list[Any] = []

    def listen(self, callback: Any) -> None:
        self.listeners.append(callback)

    def unlisten(self, callback: Any) -> None:
        self.listeners.remove(callback)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.cluster.live

    def select(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return [self.cluster.live]

    def changed(self, live: dict[str, Any]) -> None:
        self.cluster.live = live
        for callback in list(self.listeners):
            callback()


def warning(uid: str, reason: str, message: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "type": "Warning", "reason": reason, "message": message,
            "count": 1, "lastTimestamp": "2030-01-01T00:00:00Z",
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "ns"}}


def make() -> tuple[K8sRunner, Cluster, list[str]]:
    cluster = Cluster()
    lines: list[str] = []
    hooks = RunnerHooks(log=lambda resource, text, source, prefix: lines.append(text),
                        changed=lambda: None)
    resource = p.Resource(name="web", type=p.ResourceType.K8S)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    runner = K8sRunner(resource, plan=plan, cluster=cluster, hooks=hooks)  # type: ignore[arg-type]
    runner.monitor.applied = [dict(POD)]
    return runner, cluster, lines


def test_warnings_about_an_unready_pod_are_alerts_and_every_event_is_logged_and_kept():
    async def run() -> None:
        runner, cluster, lines = make()
        await runner.monitor.observe()
        cluster.events.deliver(warning("1", "Unhealthy", "Readiness probe failed: no"))
        await runner.monitor.observe()
        report = runner.runtime()
        assert report.state == RuntimeState.PENDING
        assert report.alerts == ["pod web: Unhealthy: Readiness probe failed: no"]
        assert "[event: pod web] Unhealthy: Readiness probe failed: no" in lines
        assert report.details["events"][0]["reason"] == "Unhealthy"
        cluster.live = pod_status(ready=True)
        await runner.monitor.observe()
        assert runner.runtime().alerts == []  # a ready pod's warnings are history
        assert runner.runtime().details["events"][0]["reason"] == "Unhealthy"
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_a_stopped_container_is_followed_once_a_new_instance_again():
    async def run() -> None:
        runner, cluster, _ = make()
        cluster.live = pod_status(ready=False, running=False)
        for _ in range(3):
            await runner.monitor.observe()
            await asyncio.sleep(0)  # let the follow task end
        assert cluster.follows == [("web", "main")]
        cluster.live = pod_status(ready=True, restarts=1)
        await runner.monitor.observe()
        await asyncio.sleep(0)
        assert cluster.follows == [("web", "main"), ("web", "main")]
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_changed_files_whose_content_hashes_as_deployed_update_nothing():
    class Digests(Cluster):
        def __init__(self) -> None:
            super().__init__()
            self.digest = "sha256:1"
            self.builds = 0

        async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]:
            return {"app": self.digest}

        async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any,
                               inputs: Any = None) -> dict:
            self.builds += 1
            inputs["app"] = self.digest  # what the build read
            return {"app": f"reg/app:{self.builds}"}

    async def run() -> None:
        cluster = Digests()
        lines: list[str] = []
        hooks = RunnerHooks(log=lambda resource, text, source, prefix: lines.append(text),
                            changed=lambda: None)
        resource = p.Resource(name="web", type=p.ResourceType.K8S, image_refs=("app",))
        plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,), images=(
            p.DockerBuild(ref="app", context="/p/app", dockerfile="Dockerfile"),))
        runner = K8sRunner(resource, plan=plan, cluster=cluster,  # type: ignore[arg-type]
                           hooks=hooks)
        await runner.update(())
        await runner.update(("/p/app/main.py",))
        assert cluster.builds == 1
        assert "1 changed file, same content as deployed: nothing to update" in lines
        await runner.update(("/p/Tiltfile.extra",))  # outside every build context
        assert cluster.builds == 2
        cluster.digest = "sha256:2"
        await runner.update(("/p/app/main.py",))
        assert cluster.builds == 3
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def running(*, restarts: int = 0, started: str = "") -> dict[str, Any]:
    live = pod_status(ready=True, restarts=restarts)
    live["metadata"] = {**live["metadata"], "uid": "u1"}
    live["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": started}}
    return live


def test_the_monitor_reads_again_when_the_watch_reports_a_change_not_on_a_clock():
    async def run() -> None:
        runner, cluster, _ = make()
        await runner.monitor.restart()
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.PENDING
        assert cluster.watched.listeners  # the monitor listens to the shared watch
        cluster.live = running()  # changed without the watch saying so: not seen
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.PENDING
        cluster.watched.changed(running())
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.OK
        await runner.stop()
        assert cluster.watched.listeners == []
        await cluster.events.close()

    asyncio.run(run())


def test_a_ready_container_is_stable_only_after_running_a_while_without_restart():
    async def run() -> None:
        runner, cluster, _ = make()
        cluster.live = running()
        before = time.monotonic()
        await runner.monitor.observe()
        first = runner.runtime().stable_at
        assert first is not None
        assert before + k8s_monitor.STABLE_SECONDS <= first
        assert first <= time.monotonic() + k8s_monitor.STABLE_SECONDS
        await asyncio.sleep(0.05)
        await runner.monitor.observe()
        assert runner.runtime().stable_at == first  # the same instance: same clock
        cluster.live = running(restarts=1)  # crashed and came back: counts again
        await asyncio.sleep(0.05)
        await runner.monitor.observe()
        again = runner.runtime().stable_at
        assert again is not None and again > first
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_a_container_started_long_before_it_was_seen_is_stable_at_once():
    async def run() -> None:
        runner, cluster, _ = make()
        cluster.live = running(started="2020-01-01T00:00:00Z")
        await runner.monitor.observe()
        stable_at = runner.runtime().stable_at
        assert stable_at is not None and stable_at < time.monotonic()
        # A pod that is not ready (it crashed, or restarts) is never trusted, even when its
        # workload's status, written later by its controller, still counts it ready.
        cluster.live = pod_status(ready=False)
        await runner.monitor.observe()
        assert runner.runtime().stable_at == math.inf
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_a_forward_that_does_not_connect_yet_is_tried_again_soon_without_a_change():
    class Handle:
        def __init__(self) -> None:
            self.answers = ["connection refused: nothing listens on port 8000 in the pod"]

        async def probe(self) -> str:
            return self.answers.pop(0) if self.answers else ""

        async def stop(self) -> None:
            return None

    class Forwarding(Cluster):
        async def forward(self, *args: Any) -> Any:
            return Handle()

    async def run() -> None:
        cluster = Forwarding()
        hooks = RunnerHooks(log=lambda *args: None, changed=lambda: None)
        resource = p.Resource(name="web", type=p.ResourceType.K8S, port_forwards=(
            p.PortForward(local_port=18000, container_port=8000),))
        plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
        runner = K8sRunner(resource, plan=plan, cluster=cluster,  # type: ignore[arg-type]
                           hooks=hooks)
        runner.monitor.applied = [dict(POD)]
        cluster.live = running()
        await runner.monitor.restart()
        await asyncio.sleep(0.05)
        assert "connection refused" in runner.runtime().reason
        # No change from the watch: the monitor's clock tries the forward again.
        await asyncio.sleep(k8s_monitor.FORWARD_RECHECK_SECONDS * 3)
        assert runner.runtime().state == RuntimeState.OK
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())
