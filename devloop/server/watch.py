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
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devloop.engine.store import Change, Store
from devloop.engine.tasks import Reporter, cancel_and_wait, spawn
from devloop.server.outbox import (
    ClientTooSlow,
    Outbox,
    StreamSettings,
    abort,
    event_bytes,
    open_event_stream,
    send_stream,
    write_within,
)

ALL_KINDS = "all"


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    kind: str
    version: int  # the store version of this change: the event id
    object: dict[str, Any]

    @functools.cached_property
    def wire(self) -> bytes:
        """The event as sent, made once however many watchers send it."""
        return event_bytes({"type": self.type, "object": self.object}, self.version)


class ChangeFeed:
    """One subscriber to the store that numbers deletions, keeps tombstones and fans out.

    Every store change bumps the version by one and is published in order, so counting the
    changes we read gives each deletion its version (the store's Change carries the deleted
    object with the version it had while alive).
    """

    def __init__(self, store: Store, *, on_error: Reporter | None = None) -> None:
        """`on_error` reports the feed failing (every watch would stall)."""
        self.store = store
        self._on_error = on_error
        self._queue = store.subscribe()
        self._seen = store.version
        self._tombstones: dict[tuple[str, str], int] = {}
        self._watchers: list[Outbox[WatchEvent]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = spawn(self._pump(), name="api-change-feed", on_error=self._on_error)

    async def stop(self) -> None:
        self.store.unsubscribe(self._queue)
        await cancel_and_wait(self._task)

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
            watcher.offer(event)

    def current(self) -> tuple[int, list[dict[str, Any]]]:
        """Every object now, and the version a watch resumes from to get what changes next
        (the dashboard's page carries these, so it paints before its watch opens)."""
        self.catch_up()
        return self._seen, [obj.to_json() for obj in self.store]

    def open(self, kind: str, since: int | None, *, limit_bytes: int,
             ) -> tuple[list[WatchEvent], Outbox[WatchEvent]]:
        """The replay for a new watcher and its bounded outbox of live events of `kind`."""
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
        outbox: Outbox[WatchEvent] = Outbox(
            accept=lambda event: kind == ALL_KINDS or event.kind == kind,
            cost=event_cost, limit_bytes=limit_bytes)
        self._watchers.append(outbox)
        return replay, outbox

    def close(self, outbox: Outbox[WatchEvent]) -> None:
        if outbox in self._watchers:
            self._watchers.remove(outbox)


def event_cost(event: WatchEvent) -> int:
    """A waiting event's share of a client's buffer: its wire bytes (shared with the other
    watchers, so this over-counts) and a reference."""
    return len(event.wire) + 8


# A version or seq as we send it: decimal digits only (int() would also take "-1", " 7",
# "1_000" and other scripts' digits), at most 18, so it fits the store's 64-bit arrays.
VERSION_DIGITS = "[0-9]{1,18}"


def parse_version(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not re.fullmatch(VERSION_DIGITS, value):
        raise web.HTTPBadRequest(text=json.dumps({
            "error": f"not a version: {value[:40]!r} (a number from an earlier answer)"}),
            content_type="application/json")
    return int(value)


def resume_version(request: web.Request, param: str) -> int | None:
    """Where a stream resumes: the newer of the `param` query value and the `Last-Event-ID`
    header an EventSource sends on reconnecting (its URL keeps the version it first opened
    with; the header says how far it got since). Both are checked, so a bad one is never
    ignored."""
    given = parse_version(request.query.get(param))
    header = parse_version(request.headers.get("Last-Event-ID"))
    if given is None or header is None:
        return given if given is not None else header
    return max(given, header)


async def stream_changes(request: web.Request, feed: ChangeFeed, kind: str, *,
                         settings: StreamSettings, closing: asyncio.Event,
                         ) -> web.StreamResponse:
    """`GET /api/v1/{kind}?watch=1`: replay, then live changes, until either side stops."""
    since = resume_version(request, "resourceVersion")
    response = web.StreamResponse()
    try:
        response = await open_event_stream(request)
    except ConnectionResetError:
        return response  # the client went away before the stream started
    replay, outbox = feed.open(kind, since, limit_bytes=settings.buffer_bytes)
    sent = since or 0

    def render(event: WatchEvent) -> bytes:
        nonlocal sent
        sent = max(sent, event.version)
        return event.wire

    try:
        if replay:
            await write_within(response, b"".join(render(event) for event in replay),
                               settings.send_timeout_seconds)
        await send_stream(request, response, outbox, render=render,
                          resume_hint=lambda: f"resume with resourceVersion={sent}",
                          settings=settings, closing=closing)
    except ClientTooSlow:
        abort(request, response)
    except ConnectionResetError:
        pass  # the client went away during the replay
    finally:
        feed.close(outbox)
    return response
