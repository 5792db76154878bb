"""The session's health monitor: a part that fails a probe is an alert and a log line at
once, resources say the cluster is unreachable, and its return clears the alert and
updates again what failed meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devloop.engine import cluster_health
from devloop.engine.alerts import AlertType, alert_id
from devloop.engine.cluster_health import (
    ClusterHealth,
    Part,
    Reporter,
    Unwatchable,
    retry_failed_updates,
)
from devloop.engine.runner import RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.k8s import api_health
from devloop.k8s.api_health import readyz_failures
from devloop.k8s.errors import KubeError

API_ALERT = alert_id(AlertType.CLUSTER, cluster_health.SESSION_RESOURCE, "api-server")
KUBELET_ALERT = alert_id(AlertType.CLUSTER, cluster_health.SESSION_RESOURCE, "kubelet-n1")


class Parts:
    def __init__(self) -> None:
        self.answers: dict[str, Any] = {"api-server": "", "kubelet-n1": ""}
        self.asked: list[str] = []

    def probe(self, key: str) -> Any:
        async def answer() -> str:
            self.asked.append(key)
            value = self.answers[key]
            if isinstance(value, Exception):
                raise value
            if value == "hang":
                await asyncio.sleep(60)
            return str(value)

        return answer

    def __call__(self) -> list[Part]:
        return [Part(key, key.replace("-", " "), self.probe(key)) for key in self.answers]


class Recorder:
    def __init__(self) -> None:
        self.alerts: dict[str, str] = {}
        self.lines: list[str] = []
        self.changes = 0
        self.recovered: list[tuple[str, float]] = []

    def reporter(self) -> Reporter:
        def change() -> None:
            self.changes += 1

        return Reporter(
            log=self.lines.append,
            publish=lambda kind, name, spec, status: self.alerts.__setitem__(
                name, str(status["message"])),
            delete=lambda kind, name: self.alerts.pop(name, None), on_change=change,
            on_recovered=lambda label, since: self.recovered.append((label, since)))


def monitor(parts: Parts, recorder: Recorder, clock: list[float]) -> ClusterHealth:
    return ClusterHealth(parts, recorder.reporter(), clock=lambda: clock[0],
                         wall=lambda: 1000.0 + clock[0])


def test_a_failing_part_is_an_alert_at_once_and_its_return_clears_it():
    parts, recorder, clock = Parts(), Recorder(), [0.0]
    health = monitor(parts, recorder, clock)
    asyncio.run(health.check_once())
    assert recorder.alerts == {} and health.problem() == ""
    parts.answers["api-server"] = "the API server is not ready: etcd failed"
    asyncio.run(health.check_once())
    assert recorder.alerts == {API_ALERT: "the API server is not ready: etcd failed"}
    assert recorder.lines == ["WARNING: the API server is not ready: etcd failed"]
    assert health.problem() == "the API server is not ready: etcd failed"
    parts.answers["api-server"] = ""
    clock[0] = 15.0
    asyncio.run(health.check_once())
    assert recorder.alerts == {} and health.problem() == ""
    assert recorder.lines[-1] == "Api server is back after 15.0 s"
    assert recorder.recovered == [("api server", 1000.0)]
    assert recorder.changes == 2


def test_while_the_api_server_is_away_the_kubelets_are_not_asked():
    parts, recorder = Parts(), Recorder()
    health = monitor(parts, recorder, [0.0])
    parts.answers["api-server"] = "cannot reach the API server: connection refused"
    asyncio.run(health.check_once())
    parts.asked.clear()
    asyncio.run(health.check_once())
    assert parts.asked == ["api-server"]
    assert list(recorder.alerts) == [API_ALERT]


def test_a_kubelet_alert_goes_quietly_when_the_api_server_goes_away():
    parts, recorder = Parts(), Recorder()
    health = monitor(parts, recorder, [0.0])
    parts.answers["kubelet-n1"] = "the kubelet of node n1 is unreachable: connection refused"
    asyncio.run(health.check_once())
    assert list(recorder.alerts) == [KUBELET_ALERT]
    parts.answers["api-server"] = "cannot reach the API server at https://a:6443: refused"
    asyncio.run(health.check_once())
    assert list(recorder.alerts) == [API_ALERT]
    assert not any("back" in line for line in recorder.lines)


def test_a_probe_that_does_not_answer_is_a_failure(monkeypatch):
    monkeypatch.setattr(cluster_health, "PROBE_TIMEOUT_SECONDS", 0.05)
    parts, recorder = Parts(), Recorder()
    parts.answers["kubelet-n1"] = "hang"

    async def scenario() -> None:
        health = monitor(parts, recorder, [0.0])
        await health.check_once()
        await health.stop()

    asyncio.run(scenario())
    assert "does not answer" in recorder.alerts[KUBELET_ALERT]


def test_a_part_these_credentials_cannot_probe_is_left_alone():
    parts, recorder = Parts(), Recorder()
    parts.answers["kubelet-n1"] = Unwatchable("nodes/proxy is forbidden")
    health = monitor(parts, recorder, [0.0])
    asyncio.run(health.check_once())
    asyncio.run(health.check_once())
    assert recorder.alerts == {}
    assert parts.asked.count("kubelet-n1") == 1
    assert "cannot be watched" in recorder.lines[0]


def test_resources_say_the_cluster_is_unreachable_while_a_part_fails():
    parts, recorder = Parts(), Recorder()
    health = monitor(parts, recorder, [0.0])
    ready = RuntimeReport(RuntimeState.OK, "ready", stable_at=1.0)
    asyncio.run(health.check_once())
    assert health.overlay(ready) is ready
    parts.answers["kubelet-n1"] = "the kubelet of node n1 is unreachable: connection refused"
    asyncio.run(health.check_once())
    shown = health.overlay(ready)
    assert shown.state == RuntimeState.PENDING
    assert shown.reason == ("cluster unreachable: the kubelet of node n1 is unreachable: "
                            "connection refused")
    assert shown.alerts == [shown.reason]
    assert health.overlay(RuntimeReport(RuntimeState.NOT_APPLICABLE)).state == (
        RuntimeState.NOT_APPLICABLE)


class Engine:
    def __init__(self, failed: dict[str, float | None]) -> None:
        self.failed = failed
        self.triggered: list[tuple[str, str]] = []

    def names(self) -> list[str]:
        return list(self.failed)

    def trigger(self, name: str, changed_files: tuple[str, ...] = (), *,
                cause: str = "triggered") -> None:
        self.triggered.append((name, cause))

    def wake(self) -> None:
        return None


def test_updates_that_failed_during_the_outage_run_again_when_the_part_returns():
    engine = Engine({"api": 1000.0, "web": None, "old": 100.0, "check": 1001.0})
    names = retry_failed_updates(engine, engine.failed.get, "the registry localhost:5000",
                                 990.0, eligible=lambda name: name != "check")
    assert names == ["api"]
    assert engine.triggered == [("api", "the registry localhost:5000 is back")]


def test_the_failed_checks_of_readyz_are_named():
    body = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\n[-]informer-sync failed\n"
    assert readyz_failures(body) == ["etcd", "informer-sync"]


class Kube:
    """Raises `error` for every request, as KubeClient.request does for a failed one."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.configuration = type("Configuration", (), {"host": "https://127.0.0.1:6443"})

    def request(self, method: str, path: str, **kw: Any) -> Any:
        raise self.error


def test_an_api_server_without_etcd_says_so():
    from devloop.k8s.errors import error_from_status

    error = error_from_status(500, "[+]ping ok\n[-]etcd failed: reason withheld\n"
                              "readyz check failed", "API server")
    problem = asyncio.run(api_health.api_server_problem(Kube(error)))  # type: ignore[arg-type]
    assert problem == "the API server is not ready: etcd failed"


def test_an_unreachable_api_server_says_so_briefly():
    error = KubeError(
        "API server: cannot reach the API server: HTTPSConnectionPool(host='127.0.0.1', "
        "port=6443): Max retries exceeded with url: /readyz?verbose=1 (Caused by "
        "NewConnectionError('<urllib3.connection.HTTPSConnection object at 0x7f>: Failed to "
        "establish a new connection: [Errno 111] Connection refused'))", temporary=True)
    problem = asyncio.run(api_health.api_server_problem(Kube(error)))  # type: ignore[arg-type]
    assert problem == "cannot reach the API server at https://127.0.0.1:6443: connection refused"


def test_a_stopped_kubelet_is_named_with_the_api_servers_dial_error():
    from devloop.k8s.errors import error_from_status

    error = error_from_status(500, 'Get "https://127.0.0.1:10250/containerLogs/ns/p/c": '
                              "dial tcp 127.0.0.1:10250: connect: connection refused", "log")
    problem = asyncio.run(api_health.kubelet_problem(
        Kube(error), "n1", ("ns", "p", "c")))  # type: ignore[arg-type]
    assert problem == ("the kubelet of node n1 is unreachable: dial tcp 127.0.0.1:10250: "
                       "connect: connection refused")


def test_a_kubelet_these_credentials_may_not_ask_is_not_a_fault():
    from devloop.k8s.errors import error_from_status

    error = error_from_status(403, "pods/log is forbidden", "log")
    with pytest.raises(api_health.NotAllowed):
        asyncio.run(api_health.kubelet_problem(Kube(error), "n1", ("ns", "p", "c")))  # type: ignore[arg-type]
    gone = error_from_status(404, "pods p not found", "log")
    assert asyncio.run(api_health.kubelet_problem(
        Kube(gone), "n1", ("ns", "p", "c"))) == ""  # type: ignore[arg-type]


class ReadyButNoStorage:
    """/readyz still says ok (it does for a few seconds without etcd); reads hang."""

    namespace = "ns"
    configuration = Kube.__init__  # unused

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if path == "/readyz":
            return type("Response", (), {"status": 200, "read": lambda self: b"ok",
                                         "release_conn": lambda self: None})()
        raise KubeError("API server read: cannot reach the API server: Read timed out. "
                        "(read timeout=2.8)", temporary=True)


def test_an_api_server_that_cannot_read_its_storage_says_so():
    problem = asyncio.run(api_health.api_server_problem(ReadyButNoStorage()))  # type: ignore[arg-type]
    assert problem == "the API server cannot read its storage (etcd): no answer in 2.8 s"
