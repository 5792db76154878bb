"""A followed log survives the cluster's faults: cut streams, an unreachable API server, a
kubelet that cannot serve the log; each line is shown once and nothing is raised."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import urllib3

from devloop.k8s import streams
from devloop.k8s.errors import KubeError
from devloop.k8s.streams import LogCursor, LogFollower, LogLine, split_timestamp

LOG = [f"2030-01-01T00:00:0{i}.000000000Z line {i}" for i in range(1, 7)]


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "BACKOFF_FIRST_SECS", 0.001)
    monkeypatch.setattr(streams, "RECONNECT_MAX_SECS", 0.002)


class Body:
    """A streamed response: `data`, then a clean end, or `error` raised after it."""

    def __init__(self, data: bytes, error: Exception | None = None) -> None:
        self.data, self.error = data, error

    def read1(self, size: int) -> bytes:
        if not self.data:
            if self.error is not None:
                raise self.error
            return b""
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def shutdown(self) -> None:
        return None

    def close(self) -> None:
        return None


Answer = Callable[[dict[str, Any]], Any]


class Kube:
    """Answers log requests from `logs` in turn (the last one repeats) and state requests
    from `states`; an answer that is an exception is raised."""

    def __init__(self, logs: list[Any], states: list[Any]) -> None:
        self.logs, self.states = logs, states
        self.log_queries: list[dict[str, Any]] = []

    def request(self, method: str, path: str, *, query: Any = (), **kw: Any) -> Any:
        queue = self.logs if path.endswith("/log") else self.states
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if path.endswith("/log"):
            self.log_queries.append(dict(query))
        if isinstance(answer, Exception):
            raise answer
        return answer(dict(query)) if callable(answer) else answer


def body_from(lines: list[str], *, cut: str = "", clean: bool = False) -> Answer:
    """The log from `sinceTime`'s second on (as the kubelet serves it); `cut`: a partial
    line after which the connection breaks (or, `clean`, just ends)."""

    def answer(query: dict[str, Any]) -> Body:
        since = str(query.get("sinceTime", ""))[:19]
        data = "".join(line + "\n" for line in lines if line[:19] >= since).encode()
        if cut:
            return Body(data + cut.encode(),
                        None if clean else urllib3.exceptions.ProtocolError("broken"))
        return Body(data)

    return answer


RUNNING = {"status": {"containerStatuses": [{"name": "main", "state": {"running": {}}}]}}
STOPPED = {"status": {"containerStatuses": [{"name": "main", "state": {"terminated": {}}}]}}
API_DOWN = KubeError("cannot reach the API server: connection refused", temporary=True)


def follow(kube: Kube, cursor: LogCursor) -> list[LogLine]:
    shown: list[LogLine] = []

    def emit(line: LogLine) -> None:
        cursor.advance(line.timestamp)
        shown.append(line)

    LogFollower(kube, "ns", "pod", "main", cursor.since or None, cursor.seen).run(
        emit, threading.Event())
    return shown


@pytest.mark.parametrize("clean", [False, True])
def test_a_stream_cut_mid_line_resumes_without_losing_or_repeating_a_line(clean):
    kube = Kube(logs=[body_from(LOG[:3], cut=LOG[3][:40], clean=clean), body_from(LOG)],
                states=[RUNNING, STOPPED])
    shown = follow(kube, LogCursor())
    assert [line.text for line in shown] == [f"line {i}" for i in range(1, 7)]
    assert kube.log_queries[1]["sinceTime"] == LOG[2][:30]


def test_an_unreachable_api_server_is_waited_out_and_the_log_resumes_from_the_cursor():
    kube = Kube(logs=[body_from(LOG[:2]), API_DOWN, API_DOWN, body_from(LOG)],
                states=[API_DOWN, RUNNING, STOPPED])
    cursor = LogCursor()
    shown = follow(kube, cursor)
    assert [line.text for line in shown] == [f"line {i}" for i in range(1, 7)]
    assert cursor.since == LOG[-1][:30]


def test_the_kubelets_error_text_is_a_note_once_and_never_a_timestamp():
    unable = ("unable to retrieve container logs for containerd://" + "ab" * 32)
    kube = Kube(logs=[body_from([unable]), body_from([unable]), body_from(LOG[:2])],
                states=[RUNNING, RUNNING, STOPPED])
    cursor = LogCursor()
    shown = follow(kube, cursor)
    notes = [line.text for line in shown if line.note]
    assert notes == ["[log unavailable] unable to retrieve container logs for "
                     "containerd://abababababab"]
    assert [line.text for line in shown if not line.note] == ["line 1", "line 2"]
    assert cursor.since == LOG[1][:30]
    assert all(not str(q.get("sinceTime", "")).startswith("unable") for q in kube.log_queries)


def test_a_refused_log_is_said_once_and_the_follower_ends_without_raising():
    forbidden = KubeError("logs of ns/pod: Forbidden (403): no", status=403)
    kube = Kube(logs=[forbidden], states=[RUNNING])
    shown = follow(kube, LogCursor())
    assert [line.text for line in shown] == [
        "[log unavailable] cannot follow the log: logs of ns/pod: Forbidden (403): no"]


def test_the_last_unfinished_line_of_a_stopped_container_is_shown():
    def answer(query: dict[str, Any]) -> Body:
        return Body((LOG[0] + "\n" + LOG[1]).encode())

    kube = Kube(logs=[answer], states=[STOPPED])
    assert [line.text for line in follow(kube, LogCursor())] == ["line 1", "line 2"]


def test_a_pod_that_is_gone_ends_the_follower_quietly():
    kube = Kube(logs=[KubeError("not found", status=404)], states=[RUNNING])
    assert follow(kube, LogCursor()) == []


@pytest.mark.parametrize(("line", "expected"), [
    ("2030-01-01T00:00:01.5Z hello world", ("2030-01-01T00:00:01.5Z", "hello world")),
    ("2030-01-01T00:00:01+02:00 x", ("2030-01-01T00:00:01+02:00", "x")),
    ("unable to retrieve container logs", ("", "unable to retrieve container logs")),
    ("2030-01-01T00:0", ("", "2030-01-01T00:0")),
])
def test_a_line_starts_with_a_timestamp_or_is_a_note(line, expected):
    assert split_timestamp(line) == expected


def test_a_note_never_moves_the_cursor():
    cursor = LogCursor("2030-01-01T00:00:01Z", 2)
    cursor.advance("")
    assert (cursor.since, cursor.seen) == ("2030-01-01T00:00:01Z", 2)
