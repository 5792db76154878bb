"""Port-forwards: Tilt's container port rule, and health only when a connection works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devloop.engine.alerts import AlertType, alert_id
from devloop.engine.forwards import (
    ALERT_AFTER_SECONDS,
    FAIL_AFTER_SECONDS,
    ForwardKeeper,
    summarize,
)
from devloop.engine.runner import RunnerHooks
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.portforward import container_port_for
from devloop.model import plan as p

ALERT = ("alert", alert_id(AlertType.PORT_FORWARD, "web", "8000"))


def pod(name: str, *ports: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [
        {"name": "main", "ports": [{"containerPort": port} for port in ports]}]}}


@pytest.mark.parametrize(("local", "container", "declared", "expected"), [
    (8000, 0, (), 8000),            # nothing declared: the same port
    (8000, 0, (5000,), 5000),       # the first declared port
    (8000, 0, (5000, 8000), 8000),  # the declared port equal to the local one
    (8000, 9000, (5000,), 9000),    # given explicitly
])
def test_container_port_follows_tilts_rule(local, container, declared, expected):
    assert container_port_for(local, container, pod("p", *declared)) == expected


class Handle:
    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.target: tuple[str, str] = ("", "")
        self.stopped = False

    async def probe(self) -> str:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def retarget(self, namespace: str, pod: str) -> None:
        self.target = (namespace, pod)

    async def stop(self) -> None:
        self.stopped = True


class Recorder:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.lines: list[str] = []

    def hooks(self) -> RunnerHooks:
        return RunnerHooks(
            log=lambda resource, text, source, prefix: self.lines.append(text),
            changed=lambda: None,
            publish=lambda kind, name, spec, status: self.objects.__setitem__(
                (kind, name), {"spec": spec, "status": status}),
            delete=lambda kind, name: self.objects.pop((kind, name), None))


def keeper(answers: list[str], clock: list[float]) -> tuple[ForwardKeeper, Recorder,
                                                              list[tuple[str, p.PortForward]]]:
    recorder = Recorder()
    started: list[tuple[str, p.PortForward]] = []

    async def forward(namespace: str, pod: str, spec: p.PortForward, on_error: Any) -> Handle:
        started.append((pod, spec))
        return Handle(answers)

    return ForwardKeeper("web", (p.PortForward(8000, 0),), forward=forward,
                         hooks=recorder.hooks(), clock=lambda: clock[0]), recorder, started


def test_a_forward_is_active_only_once_a_connection_succeeds():
    clock = [0.0]
    fwd, recorder, started = keeper(["connection refused", ""], clock)
    asyncio.run(fwd.keep([("ns", pod("web-1", 5000))]))
    assert started[0][1].container_port == 5000
    status = recorder.objects[("portforward", "web-8000")]["status"]
    assert (status["state"], status["message"]) == ("error", "connection refused")
    assert fwd.verdict().state == RuntimeState.PENDING
    asyncio.run(fwd.keep([("ns", pod("web-1", 5000))]))
    assert recorder.objects[("portforward", "web-8000")]["status"]["state"] == "active"
    assert fwd.verdict().state is None


def test_a_forward_that_stays_broken_alerts_then_fails_its_resource():
    clock = [0.0]
    fwd, recorder, _ = keeper(["connection refused"], clock)
    asyncio.run(fwd.keep([("ns", pod("web-1"))]))
    assert ALERT not in recorder.objects
    clock[0] = ALERT_AFTER_SECONDS
    asyncio.run(fwd.keep([("ns", pod("web-1"))]))
    assert fwd.verdict().state == RuntimeState.PENDING
    assert "connection refused" in recorder.objects[ALERT]["status"]["message"]
    clock[0] = FAIL_AFTER_SECONDS
    verdict = fwd.verdict()
    assert verdict.state == RuntimeState.ERROR
    assert verdict.reason == "port-forward 8000 -> web-1:8000: connection refused"


def test_a_failed_connection_sends_an_active_forward_back_to_checking():
    clock = [0.0]
    fwd, recorder, _ = keeper([""], clock)
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))
    assert fwd.states() == {8000: "active"}
    fwd._on_error(8000, "error forwarding port 8000: connection reset")
    assert fwd.states() == {8000: "error"}
    assert fwd.verdict().state == RuntimeState.PENDING
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))
    assert fwd.states() == {8000: "active"}


def test_a_forward_moves_to_another_ready_pod():
    clock = [0.0]
    fwd, _, started = keeper([""], clock)
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))
    asyncio.run(fwd.keep([("ns", pod("web-2", 8000))]))
    assert len(started) == 1
    assert fwd._forwards[8000].handle.target == ("ns", "web-2")


def test_the_kubelets_refusal_is_said_briefly():
    raw = ('error forwarding port 9999 to pod 2d8f, uid : failed to execute portforward in '
           'network namespace "/var/run/netns/cni-b2": failed to connect to localhost:9999 '
           'inside namespace "2d8f", IPv4: dial tcp4 127.0.0.1:9999: connect: connection '
           'refused IPv6 dial tcp6: address localhost: no suitable address found')
    assert summarize(raw) == "connection refused: nothing listens on port 9999 in the pod"
    assert summarize("pods \"web-1\" not found") == "pods \"web-1\" not found"


def test_a_first_forward_opens_on_a_running_pod_before_it_is_ready():
    """As Tilt does: the user's first request goes through once the server listens, before
    the readiness probe says so; until the pod is ready the forward is only pending (a
    starting server refuses connections: no probe, no alert), then a probe makes it
    active."""
    clock = [0.0]
    fwd, recorder, started = keeper(["connection refused", ""], clock)
    asyncio.run(fwd.keep([], [("ns", pod("web-1", 8000))]))
    assert [name for name, _ in started] == ["web-1"]
    status = recorder.objects[("portforward", "web-8000")]["status"]
    assert (status["state"], status["message"]) == ("pending", "pod web-1 is not ready yet")
    clock[0] = FAIL_AFTER_SECONDS
    assert fwd.verdict().state is None  # the pod's own state says it is not ready
    assert ALERT not in recorder.objects
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))  # ready: probed, refused
    assert fwd.states() == {8000: "error"}
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))
    assert fwd.states() == {8000: "active"}
    assert len(started) == 1  # the same forward all along


def test_a_forward_that_worked_never_moves_to_a_pod_that_is_not_ready():
    """A working forward that loses its ready pod is a fault (said at once), even while a
    replacement runs without being ready yet."""
    clock = [0.0]
    fwd, _, started = keeper([""], clock)
    asyncio.run(fwd.keep([("ns", pod("web-1", 8000))]))
    assert fwd.states() == {8000: "active"}
    asyncio.run(fwd.keep([], [("ns", pod("web-2", 8000))]))
    assert fwd.states() == {8000: "error"}
    assert fwd._forwards[8000].handle.target == ("ns", "")
    assert len(started) == 1
