"""A container's log resumes after the cursor: no line is shown twice (k8s/streams.py)."""

from __future__ import annotations

import threading
from typing import Any

from devloop.k8s.streams import LogCursor, LogFollower, LogLine

LOG = [
    "2030-01-01T00:00:01.000000001Z one",
    "2030-01-01T00:00:02.000000000Z two",
    "2030-01-01T00:00:02.000000000Z two again",
    "2030-01-01T00:00:03.5Z three",
]


class Body:
    def __init__(self, lines: list[str]) -> None:
        self.data = ("\n".join(lines) + "\n").encode()

    def read1(self, size: int) -> bytes:
        chunk, self.data = self.data[:size], self.data[size:]
        return chunk

    def shutdown(self) -> None:
        return None

    def close(self) -> None:
        return None


class Kube:
    """Serves the whole log from the start of `sinceTime`'s second, like the kubelet."""

    def __init__(self) -> None:
        self.queries: list[list[tuple[str, Any]]] = []

    def request(self, method: str, path: str, *, query: Any = (), **kw: Any) -> Any:
        if path.endswith("/log"):
            self.queries.append(query)
            since = dict(query).get("sinceTime", "")
            return Body([line for line in LOG if line[:19] >= since[:19]])
        return {"status": {"containerStatuses": [{"name": "main", "state": {
            "terminated": {}}}]}}


def follow(kube: Kube, cursor: LogCursor) -> list[str]:
    shown: list[str] = []

    def emit(line: LogLine) -> None:
        cursor.advance(line.timestamp)
        shown.append(line.text)

    LogFollower(kube, "ns", "pod", "main", cursor.since or None, cursor.seen).run(
        emit, threading.Event())
    return shown


def test_following_again_from_the_cursor_shows_only_new_lines():
    kube, cursor = Kube(), LogCursor()
    assert follow(kube, cursor) == ["one", "two", "two again", "three"]
    assert follow(kube, cursor) == []
    assert dict(kube.queries[-1])["sinceTime"] == "2030-01-01T00:00:03.5Z"


def test_lines_sharing_the_cursors_timestamp_are_skipped_only_as_often_as_seen():
    kube = Kube()
    cursor = LogCursor("2030-01-01T00:00:02.000000000Z", 1)
    assert follow(kube, cursor) == ["two again", "three"]
