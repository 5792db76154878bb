"""Pod events (scheduling, pulls, probes, kills, mounts): one watch per namespace, fanned out.

Kubernetes records what happens to a pod as Event objects, which `kubectl describe` shows
and a log stream never does. One watch per namespace (list, then watch, resumed like the
pod watch) feeds every resource that follows a pod there; a subscriber first gets the
events already seen for its pod, so nothing is lost to the race between a pod's creation
and its first subscriber. An event updated with a higher count is delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from devloop.model.background import spawn

log = logging.getLogger(__name__)

# Watch failures that are not temporary (no permission to list events) end the watch;
# it is tried again after this long, so events come back once the problem is fixed.
RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class PodEventRecord:
    """One event about one pod, as shown in the resource's log and Facets."""

    namespace: str
    pod: str
    type: str  # Normal or Warning
    reason: str
    message: str
    count: int
    timestamp: float  # seconds since the epoch of its last occurrence

    @property
    def warning(self) -> bool:
        return self.type == "Warning"

    def line(self) -> str:
        return f"[event: pod {self.pod}] {self.reason}: {self.message}"

    def as_facet(self) -> dict[str, object]:
        return {"pod": self.pod, "type": self.type, "reason": self.reason,
                "message": self.message, "count": self.count, "time": self.timestamp}


class EventSource(Protocol):
    def watch_pod_events(self, namespace: str) -> AsyncIterator[Any]: ...


# Called with each event and whether it is new to the session: an event some earlier
# subscriber (a runner before a reload) already got is replayed with False, so it is kept
# in Facets without being logged twice.
Subscriber = Callable[[PodEventRecord, bool], None]


def _seconds(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def record_of(event: dict[str, Any]) -> tuple[str, PodEventRecord] | None:
    """(uid, record) of an Event about a pod; None for anything else."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != "Pod" or not involved.get("name"):
        return None
    meta = event.get("metadata") or {}
    series = event.get("series") or {}
    when = (series.get("lastObservedTime") or event.get("lastTimestamp")
            or event.get("eventTime") or event.get("firstTimestamp")
            or meta.get("creationTimestamp") or "")
    count = int(series.get("count") or event.get("count") or 1)
    record = PodEventRecord(
        namespace=str(involved.get("namespace") or meta.get("namespace") or ""),
        pod=str(involved["name"]), type=str(event.get("type") or "Normal"),
        reason=str(event.get("reason") or ""),
        message=" ".join(str(event.get("note") or event.get("message") or "").split()),
        count=count, timestamp=_seconds(str(when)))
    return str(meta.get("uid") or meta.get("name") or ""), record


class EventHub:
    """Delivers pod events to subscribers by (namespace, pod). Events that last happened
    before `since` (seconds since the epoch) belong to an earlier session and are skipped."""

    def __init__(self, source: EventSource, *, since: float | None = None) -> None:
        self._source = source
        # Event times have one-second resolution: keep the whole starting second.
        self._since = int(time.time() if since is None else since) - 1
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[str, int] = {}  # event uid -> count delivered
        self._events: dict[tuple[str, str], list[PodEventRecord]] = {}
        self._delivered: set[int] = set()  # id() of records some subscriber got
        self._subscribers: dict[tuple[str, str], list[Subscriber]] = {}

    def subscribe(self, namespace: str, pod: str, callback: Subscriber) -> None:
        """Call `callback` with every event of the pod: those seen so far, then new ones."""
        self._subscribers.setdefault((namespace, pod), []).append(callback)
        for record in list(self._events.get((namespace, pod), [])):
            fresh = id(record) not in self._delivered
            self._delivered.add(id(record))
            callback(record, fresh)
        if namespace not in self._tasks:
            self._tasks[namespace] = spawn(self._watch(namespace), name=f"pod-events:{namespace}")

    def unsubscribe(self, namespace: str, pod: str, callback: Subscriber) -> None:
        callbacks = self._subscribers.get((namespace, pod), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def forget(self, namespace: str, pod: str) -> None:
        """The pod is gone: drop its events and subscribers."""
        for record in self._events.pop((namespace, pod), []):
            self._delivered.discard(id(record))
        self._subscribers.pop((namespace, pod), None)

    def deliver(self, event: dict[str, Any]) -> None:
        """Take one Event object from the watch (public so fakes can feed it)."""
        found = record_of(event)
        if found is None:
            return
        uid, record = found
        if record.timestamp and record.timestamp < self._since:
            return
        if self._seen.get(uid, 0) >= record.count:
            return
        self._seen[uid] = record.count
        key = (record.namespace, record.pod)
        self._events.setdefault(key, []).append(record)
        callbacks = list(self._subscribers.get(key, []))
        if callbacks:
            self._delivered.add(id(record))
        for callback in callbacks:
            try:
                callback(record, True)
            except Exception:  # one subscriber's bug must not stop the others
                log.exception("pod event subscriber failed")

    async def _watch(self, namespace: str) -> None:
        while True:
            try:
                async for item in self._source.watch_pod_events(namespace):
                    if getattr(item, "type", "") != "DELETED":
                        self.deliver(getattr(item, "pod", {}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no permission, API gone: say so, try again later
                log.warning("watching pod events in %s: %s", namespace, exc)
            await asyncio.sleep(RETRY_SECONDS)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
