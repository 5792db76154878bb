"""K8sRunner's runtime reading against a fake cluster: pod events, log follows, forwards."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, cast

from devloop.engine import k8s_monitor
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.runner import RunnerHooks, RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.events import EventHub
from devloop.model import plan as p
from tests.unit.fake_cluster import FakeCluster, Recorder, Silent

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


class Cluster(FakeCluster):
    """A bare pod, `web`, which is its own workload: `live`, kept across builds. Its
    events come from a real event hub over a source that is silent until a test delivers
    one."""

    def __init__(self) -> None:
        super().__init__(workload=POD, rolls_out=False, pods=[pod_status(ready=False)],
                         events=EventHub(Silent(), since=0))

    @property
    def live(self) -> dict[str, Any]:
        return self.pods[0]

    @live.setter
    def live(self, pod: dict[str, Any]) -> None:
        self.pods = [pod]


def warning(uid: str, reason: str, message: str) -> dict[str, Any]:
    return {"metadata": {"uid": uid}, "type": "Warning", "reason": reason, "message": message,
            "count": 1, "lastTimestamp": "2030-01-01T00:00:00Z",
            "involvedObject": {"kind": "Pod", "name": "web", "namespace": "ns"}}


def make() -> tuple[K8sRunner, Cluster, list[str]]:
    cluster, recorder = Cluster(), Recorder()
    resource = p.Resource(name="web", type=p.ResourceType.K8S)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    runner = K8sRunner(resource, plan=plan, cluster=cluster, hooks=recorder.hooks())
    runner.monitor.applied = [dict(POD)]
    return runner, cluster, recorder.lines


def events_of(report: RuntimeReport) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], report.details["events"])


def test_warnings_about_an_unready_pod_are_alerts_and_every_event_is_logged_and_kept() -> None:
    async def run() -> None:
        runner, cluster, lines = make()
        await runner.monitor.observe()
        cluster.events.deliver(warning("1", "Unhealthy", "Readiness probe failed: no"))
        await runner.monitor.observe()
        report = runner.runtime()
        assert report.state == RuntimeState.PENDING
        assert report.alerts == ["pod web: Unhealthy: Readiness probe failed: no"]
        assert "[event: pod web] Unhealthy: Readiness probe failed: no" in lines
        assert events_of(report)[0]["reason"] == "Unhealthy"
        cluster.live = pod_status(ready=True)
        await runner.monitor.observe()
        assert runner.runtime().alerts == []  # a ready pod's warnings are history
        assert events_of(runner.runtime())[0]["reason"] == "Unhealthy"
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())


def test_a_stopped_container_is_followed_once_a_new_instance_again() -> None:
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


def test_changed_files_whose_content_hashes_as_deployed_update_nothing() -> None:
    async def run() -> None:
        cluster, recorder = Cluster(), Recorder()
        cluster.digests["app"] = "sha256:1"
        lines = recorder.lines
        hooks = recorder.hooks()
        resource = p.Resource(name="web", type=p.ResourceType.K8S, image_refs=("app",))
        plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,), images=(
            p.DockerBuild(ref="app", context="/p/app", dockerfile="Dockerfile"),))
        runner = K8sRunner(resource, plan=plan, cluster=cluster, hooks=hooks)
        await runner.update(())
        await runner.update(("/p/app/main.py",))
        assert cluster.builds == 1
        assert "1 changed file, same content as deployed: nothing to update" in lines
        await runner.update(("/p/Tiltfile.extra",))  # outside every build context
        assert cluster.builds == 2
        cluster.digests["app"] = "sha256:2"
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


def test_the_monitor_reads_again_when_the_watch_reports_a_change_not_on_a_clock() -> None:
    async def run() -> None:
        runner, cluster, _ = make()
        await runner.monitor.restart()
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.PENDING
        assert cluster.watched.listeners  # the monitor listens to the shared watch
        cluster.live = running()  # changed without the watch saying so: not seen
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.PENDING
        cluster.change(running())
        await asyncio.sleep(0.1)
        assert runner.runtime().state == RuntimeState.OK
        await runner.stop()
        assert cluster.watched.listeners == []
        await cluster.events.close()

    asyncio.run(run())


def test_a_ready_container_is_stable_only_after_running_a_while_without_restart() -> None:
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


def test_a_container_started_long_before_it_was_seen_is_stable_at_once() -> None:
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


class ForwardHandle:
    """A forward whose probe says `answers` in turn, then that it works."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    async def probe(self) -> str:
        return self.answers.pop(0) if self.answers else ""

    def retarget(self, namespace: str, pod: str) -> None:
        return None

    async def stop(self) -> None:
        return None


class Forwarding(Cluster):
    """Records the pods forwards open on; each forward's probe first says `answers`."""

    def __init__(self, answers: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.answers = answers
        self.opened: list[str] = []

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Any) -> Any:
        self.opened.append(pod)
        return ForwardHandle(list(self.answers))


def forwarding_runner(cluster: Forwarding) -> K8sRunner:
    """The runner of the pod `web` with a forward of local port 18000 to its port 8000."""
    hooks = RunnerHooks(log=lambda *args: None, changed=lambda: None)
    resource = p.Resource(name="web", type=p.ResourceType.K8S, port_forwards=(
        p.PortForward(local_port=18000, container_port=8000),))
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    runner = K8sRunner(resource, plan=plan, cluster=cluster, hooks=hooks)
    runner.monitor.applied = [dict(POD)]
    return runner


def test_a_forward_that_does_not_connect_yet_is_tried_again_soon_without_a_change() -> None:
    async def run() -> None:
        cluster = Forwarding(("connection refused: nothing listens on port 8000 in the pod",))
        runner = forwarding_runner(cluster)
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


def normal(uid: str, reason: str, message: str) -> dict[str, Any]:
    return {**warning(uid, reason, message), "type": "Normal"}


def test_a_first_forward_opens_when_the_containers_started_event_comes_before_the_status(
        ) -> None:
    """The kubelet says `Started container main` in an event at once, and in the pod's
    status only after its next look at the runtime: the forward opens on the event (on
    a container of the pod's own, not an init container's start)."""
    async def run() -> None:
        cluster = Forwarding()
        runner = forwarding_runner(cluster)
        cluster.live = {**POD, "spec": {**POD["spec"], "initContainers": [{"name": "init"}]},
                        "status": {"phase": "Pending"}}
        await runner.monitor.restart()
        await asyncio.sleep(0.05)
        cluster.events.deliver(normal("1", "Started", "Started container init"))
        await asyncio.sleep(0.05)
        assert cluster.opened == []  # an init container's start is not the app's
        cluster.events.deliver(normal("2", "Started", "Started container main"))
        await asyncio.sleep(0.05)  # no change from the pod watch: the event wakes the monitor
        assert cluster.opened == ["web"]
        assert runner.runtime().state == RuntimeState.PENDING
        await runner.stop()
        await cluster.events.close()

    asyncio.run(run())
