"""Port-forwards under faults: a working forward that stops working is found by its probe,
alerted at once, keeps its local port, and comes back by itself; its alert goes with the
fault; the tunnel's errors are said in one short line, not one dump per connection."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devloop.engine import forwards
from devloop.engine.alerts import AlertType, alert_id
from devloop.engine.forwards import LOST_ALERT_AFTER_SECONDS, ForwardKeeper
from devloop.engine.runner import RunnerHooks
from devloop.k8s.portforward import PortForwarder, PortForwardError, describe_failure
from devloop.model import plan as p

ALERT = ("alert", alert_id(AlertType.PORT_FORWARD, "web", "8000"))


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "main", "ports": [{"containerPort": 8000}]}]}}


class Target:
    """A forward whose probe answers `error` ('' when the target listens)."""

    def __init__(self) -> None:
        self.error = ""
        self.pod = ""
        self.stopped = False

    async def probe(self) -> str:
        return self.error

    def retarget(self, namespace: str, pod: str) -> None:
        self.pod = pod

    async def stop(self) -> None:
        self.stopped = True


class Scene:
    def __init__(self) -> None:
        self.clock = [0.0]
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.lines: list[str] = []
        self.target = Target()
        self.woken = 0
        hooks = RunnerHooks(
            log=lambda resource, text, source, prefix: self.lines.append(text),
            changed=lambda: None,
            publish=lambda kind, name, spec, status: self.objects.__setitem__(
                (kind, name), status),
            delete=lambda kind, name: self.objects.pop((kind, name), None))

        async def forward(namespace: str, name: str, spec: p.PortForward, on_error: Any,
                          ) -> Target:
            self.target.pod = name
            return self.target

        def wake() -> None:
            self.woken += 1

        self.keeper = ForwardKeeper("web", (p.PortForward(8000, 0),), forward=forward,
                                    hooks=hooks, clock=lambda: self.clock[0], wake=wake)

    def state(self) -> str:
        return str(self.objects[("portforward", "web-8000")]["state"])


@pytest.fixture(autouse=True)
def quick_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwards, "PROBE_EVERY_SECONDS", 0.01)


def test_a_target_that_stops_listening_is_found_alerted_and_recovers_by_itself():
    async def scenario(scene: Scene) -> None:
        ready = [("ns", pod("web-1"))]
        await scene.keeper.keep(ready)
        assert scene.state() == "active"
        scene.target.error = "dial tcp4 127.0.0.1:8000: connect: connection refused"
        await asyncio.sleep(0.1)  # the periodic probe finds it
        assert scene.state() == "error" and scene.woken
        scene.clock[0] += LOST_ALERT_AFTER_SECONDS
        await scene.keeper.keep(ready)
        assert scene.keeper.verdict().state is not None
        assert "nothing listens on port 8000" in scene.objects[ALERT]["message"]
        scene.target.error = ""
        scene.clock[0] += 3
        await scene.keeper.keep(ready)
        assert scene.state() == "active"
        assert ALERT not in scene.objects
        assert any("working again" in line for line in scene.lines)
        await scene.keeper.stop()

    asyncio.run(scenario(Scene()))


def test_a_forward_that_loses_its_pod_keeps_its_port_shows_error_and_comes_back():
    async def scenario(scene: Scene) -> None:
        await scene.keeper.keep([("ns", pod("web-1"))])
        await scene.keeper.keep([])
        assert not scene.target.stopped and scene.target.pod == ""
        assert scene.state() == "error"
        scene.clock[0] += LOST_ALERT_AFTER_SECONDS
        scene.keeper.verdict()
        assert "no ready pod (pod web-1" in scene.objects[ALERT]["message"]
        await scene.keeper.keep([("ns", pod("web-2"))])
        assert (scene.state(), scene.target.pod) == ("active", "web-2")
        assert ALERT not in scene.objects
        await scene.keeper.stop()

    asyncio.run(scenario(Scene()))


def test_stopping_the_keeper_takes_its_alerts_back():
    async def scenario(scene: Scene) -> None:
        await scene.keeper.keep([("ns", pod("web-1"))])
        scene.target.error = "refused"
        scene.keeper._on_error(8000, "refused")
        scene.clock[0] += 10
        scene.keeper.verdict()
        assert ALERT in scene.objects
        await scene.keeper.stop()
        assert ALERT not in scene.objects

    asyncio.run(scenario(Scene()))


# A refused handshake as `websocket.connect` says it, behind the forwarder's own prefix; the
# kubelet's port (10250) is not the pod's, so it is not told as a refused pod port.
HANDSHAKE = (
    "port-forward to ns/web-1:8000: the API server answered 500: error dialing backend: "
    "dial tcp 127.0.0.1:10250: connect: connection refused")


def test_a_refused_handshake_is_said_as_the_kubelets_absence():
    text = describe_failure(HANDSHAKE)
    assert text == ("the kubelet is unreachable (the API server answered 500: error dialing "
                    "backend: dial tcp 127.0.0.1:10250: connect: connection refused)")
    refused = "port-forward to ns/web-1:8000: [Errno 111] Connection refused"
    assert describe_failure(refused) == "cannot reach the API server: connection refused"
    for said in (text, describe_failure(refused)):
        assert describe_failure(said) == said


def test_the_same_failure_of_many_connections_is_reported_once_then_counted():
    reports: list[PortForwardError] = []
    forwarder = PortForwarder(None, on_error=reports.append)  # type: ignore[arg-type]
    for _ in range(5):
        forwarder._report("ns", "web-1", HANDSHAKE, False)
    assert len(reports) == 1
    forwarder._reported = {k: (v[0] - 60, v[1]) for k, v in forwarder._reported.items()}
    forwarder._report("ns", "web-1", HANDSHAKE, False)
    assert len(reports) == 2 and reports[1].message.endswith("(and 4 more connections since)")


def test_a_probe_cancelled_as_its_answer_arrives_stays_cancelled():
    """The monitor waiting on a probe is cancelled (a new deploy restarts it) just as the
    probe's thread answers: the cancellation must win, or the monitor runs on and whoever
    waits for it to end waits forever."""
    from devloop.k8s.portforward import _within

    async def scenario() -> None:
        answer = asyncio.get_running_loop().create_future()
        waiting = asyncio.create_task(_within(answer, 10))
        await asyncio.sleep(0)
        answer.set_result("")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(scenario())


def test_a_monitor_cancelled_as_it_is_woken_stays_cancelled():
    from devloop.engine.k8s_monitor import wake_or_timeout

    async def scenario() -> None:
        wake = asyncio.Event()
        waiting = asyncio.create_task(wake_or_timeout(wake, 10))
        await asyncio.sleep(0)
        wake.set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(scenario())
