"""Watch streams: the store's changes as server-sent events, resumable from a version.

The store numbers every change; a client that reconnects with `resourceVersion=N` (or the
`Last-Event-ID` header its EventSource sends by itself) first gets what changed after N: the
current objects newer than N and the deletions after N, in version order, then live changes.
Deletions are remembered as tombstones, one per (kind, name): a name deleted twice needs only
its last deletion, and a name that exists again needs none, since its current object replaces
whatever the client had.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devloop.engine.store import Change, Store

ALL_KINDS = "all"


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    kind: str
    version: int  # the store version of this change: the event id
    object: dict[str, Any]


class ChangeFeed:
    """One subscriber to the store that numbers deletions, keeps tombstones and fans out.

    Every store change bumps the version by one and is published in order, so counting the
    changes we read gives each deletion its version (the store's Change carries the deleted
    object with the version it had while alive).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue = store.subscribe()
        self._seen = store.version
        self._tombstones: dict[tuple[str, str], int] = {}
        self._watchers: list[asyncio.Queue[WatchEvent]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="api-change-feed")

    async def stop(self) -> None:
        self.store.unsubscribe(self._queue)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _pump(self) -> None:
        while True:
            change = await self._queue.get()
            self._apply(change)
            self.catch_up()

    def catch_up(self) -> None:
        """Read every change the store has published so far (synchronously: the snapshot a
        new watcher takes right after this is exactly as new as what we have fanned out)."""
        while not self._queue.empty():
            self._apply(self._queue.get_nowait())

    def _apply(self, change: Change) -> None:
        obj = change.object
        key = (obj.kind, obj.name)
        if change.type == "DELETED":
            self._seen += 1
            self._tombstones[key] = self._seen
            body = obj.to_json()
            body["metadata"]["resourceVersion"] = str(self._seen)
            event = WatchEvent("DELETED", obj.kind, self._seen, body)
        else:
            self._seen = obj.version
            self._tombstones.pop(key, None)
            event = WatchEvent(change.type, obj.kind, obj.version, obj.to_json())
        for watcher in self._watchers:
            watcher.put_nowait(event)

    def open(self, kind: str, since: int | None) -> tuple[list[WatchEvent],
                                                          asyncio.Queue[WatchEvent]]:
        """The replay for a new watcher and its queue of live events (unbounded: a slow
        reader costs memory, never a stalled store)."""
        self.catch_up()
        replay: list[WatchEvent] = []
        kept_type = "ADDED" if since is None else "MODIFIED"
        floor = since or 0
        for obj in self.store:
            if (kind == ALL_KINDS or obj.kind == kind) and obj.version > floor:
                replay.append(WatchEvent(kept_type, obj.kind, obj.version, obj.to_json()))
        if since is not None:
            for (obj_kind, name), version in self._tombstones.items():
                if (kind == ALL_KINDS or obj_kind == kind) and version > since:
                    replay.append(WatchEvent("DELETED", obj_kind, version, {
                        "kind": obj_kind, "metadata": {"name": name,
                                                       "resourceVersion": str(version)}}))
        replay.sort(key=lambda event: event.version)
        queue: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._watchers.append(queue)
        return replay, queue

    def close(self, queue: asyncio.Queue[WatchEvent]) -> None:
        if queue in self._watchers:
            self._watchers.remove(queue)


# -- server-sent events

async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    return response


def event_bytes(data: Any, event_id: int | None = None) -> bytes:
    text = "" if event_id is None else f"id: {event_id}\n"
    return (text + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n").encode()


KEEPALIVE = b": keep-alive\n\n"


class Next(enum.Enum):
    ITEM = "item"
    IDLE = "idle"  # time for a keep-alive comment
    CLOSING = "closing"  # the server is stopping: end the stream cleanly


async def next_item(queue: asyncio.Queue[Any], pending: asyncio.Task[Any] | None, *,
                    keepalive_seconds: float, closing: asyncio.Event,
                    ) -> tuple[asyncio.Task[Any], Next]:
    """Wait for the next item of a stream. The pending get survives an idle tick, so no
    item is ever lost to a timeout; the caller cancels it when the stream ends."""
    task = pending or asyncio.ensure_future(queue.get())
    if closing.is_set():
        return task, Next.CLOSING
    closed = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({task, closed}, timeout=keepalive_seconds,
                           return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if task.done():
        return task, Next.ITEM
    return task, Next.CLOSING if closing.is_set() else Next.IDLE


def parse_version(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"not a version: {value!r}"}),
                                 content_type="application/json") from exc


async def stream_changes(request: web.Request, feed: ChangeFeed, kind: str, *,
                         keepalive_seconds: float, closing: asyncio.Event,
                         ) -> web.StreamResponse:
    """`GET /api/v1/{kind}?watch=1`: replay, then live changes, until either side stops."""
    since = parse_version(request.query.get("resourceVersion")
                          or request.headers.get("Last-Event-ID"))
    response = await open_event_stream(request)
    replay, queue = feed.open(kind, since)
    pending: asyncio.Task[Any] | None = None
    try:
        for event in replay:
            await response.write(event_bytes({"type": event.type, "object": event.object},
                                              event.version))
        while True:
            pending, state = await next_item(queue, pending, closing=closing,
                                             keepalive_seconds=keepalive_seconds)
            if state == Next.CLOSING:
                break
            if state == Next.IDLE:
                await response.write(KEEPALIVE)
                continue
            item, pending = pending.result(), None
            if kind == ALL_KINDS or item.kind == kind:
                await response.write(event_bytes({"type": item.type, "object": item.object},
                                                  item.version))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        if pending is not None:
            pending.cancel()
        feed.close(queue)
    return response
