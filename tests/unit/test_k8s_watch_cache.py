"""WatchCache: one shared list-then-watch per kind and namespace, told to listeners."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from devloop.k8s.errors import KubeError
from devloop.k8s.streams import SYNCED, PodEvent, WatchCache


def pod(name: str, app: str = "web") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"app": app}}}


class Script:
    """A watcher that emits a list of events and then fails or waits to be stopped."""

    def __init__(self, events: list[PodEvent], fail: bool = False) -> None:
        self.events, self.fail = events, fail
        self.interrupted = False

    def run(self, emit: Callable[[PodEvent], None], stop: threading.Event) -> None:
        for event in self.events:
            emit(event)
        if self.fail:
            raise KubeError("pods is forbidden", status=403)
        stop.wait()

    def interrupt(self) -> None:
        self.interrupted = True


def test_listeners_hear_the_complete_list_then_each_change_and_select_by_labels():
    scripts = [Script([PodEvent("ADDED", pod("a")), PodEvent("ADDED", pod("b", "db")),
                       PodEvent(SYNCED, {}), PodEvent("MODIFIED", pod("c")),
                       PodEvent("DELETED", pod("a"))])]

    async def run() -> list[list[str]]:
        cache = WatchCache(lambda: scripts[0], "pods in ns")
        heard: list[list[str]] = []
        cache.listen(lambda: heard.append(sorted(cache.objects)))
        for _ in range(50):
            await asyncio.sleep(0.01)
            if len(heard) == 3:
                break
        assert cache.synced and cache.error == ""
        assert [p["metadata"]["name"] for p in cache.select({"app": "web"})] == ["c"]
        assert cache.get("b") is not None and cache.get("a") is None
        cache.cancel()
        await asyncio.sleep(0.05)
        assert scripts[0].interrupted  # the watch thread is told to stop
        return heard

    heard = asyncio.run(run())
    # Nothing during the list, then the whole of it, then one call per change.
    assert heard == [["a", "b"], ["a", "b", "c"], ["b", "c"]]


def test_a_failed_watch_says_why_and_lists_again():
    made: list[Script] = []

    def make() -> Script:
        made.append(Script([PodEvent("ADDED", pod("a")), PodEvent(SYNCED, {})],
                           fail=not made))
        return made[-1]

    async def run() -> None:
        cache = WatchCache(make, "pods in ns")
        errors: list[str] = []
        cache.listen(lambda: errors.append(cache.error))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(made) == 2 and cache.synced:
                break
        assert "forbidden" in errors[1]  # after the first list, the failure
        assert cache.synced and cache.error == "" and len(made) == 2
        cache.cancel()

    asyncio.run(run())
