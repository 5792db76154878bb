"""One event-stream client: a bounded buffer of what waits to be sent, and the loop that sends it.

The rules, for every follow and watch stream:
- Producers (the log store, the change feed) hand items over synchronously and never wait:
  an item the client does not want is refused at once, so a stream whose filter matches
  nothing costs no queueing and no wake-up.
- What waits for one client is bounded in bytes. A client that falls that far behind (it
  stopped reading, or reads slower than the daemon produces) is dropped: it is sent an
  `event: error` naming the reason and how to resume, and the connection is closed. Nothing
  grows without bound.
- A write that cannot complete within `send_timeout_seconds` (the client's socket is full and
  it does not read) also drops the client; the connection is then aborted.
- A client that goes away is noticed within `liveness_seconds` even when nothing is sent to
  it, so its handler ends and stops costing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from devloop.engine.tasks import spawn

T = TypeVar("T")

KEEPALIVE = b": keep-alive\n\n"


@dataclass(frozen=True)
class StreamSettings:
    """keepalive_seconds: a comment after this long without a write, so proxies and browsers
    keep the stream open; 15 s is what EventSource users commonly use, not a measured figure.
    buffer_bytes: what may wait for one client. 4 MiB is half a resource's default log budget:
    a client that keeps reading never gets near it on this machine's loopback, and 100
    stuck clients cost 400 MiB at most. send_timeout_seconds: how long one write may wait for
    a client to read. liveness_seconds: how often an idle stream checks its client is still
    connected; checking is one attribute read, so once a second is nearly free."""

    keepalive_seconds: float = 15.0
    buffer_bytes: int = 4 * 1024 * 1024
    send_timeout_seconds: float = 30.0
    liveness_seconds: float = 1.0


class Outbox(Generic[T]):
    """What waits to be sent to one client: items `accept`ed and not yet sent, at most
    `limit_bytes` of them by `cost`. Past that the client is marked `overflowed` and gets
    nothing more."""

    def __init__(self, *, accept: Callable[[T], bool], cost: Callable[[T], int],
                 limit_bytes: int) -> None:
        self._accept = accept
        self._cost = cost
        self.limit_bytes = limit_bytes
        self._items: deque[T] = deque()
        self._bytes = 0
        self.overflowed = False
        self.ready = asyncio.Event()

    def offer(self, item: T) -> None:
        if self.overflowed or not self._accept(item):
            return
        cost = self._cost(item)
        if self._bytes + cost > self.limit_bytes:
            self.overflowed = True
            self._items.clear()
            self._bytes = 0
        else:
            self._items.append(item)
            self._bytes += cost
        self.ready.set()

    def take(self) -> list[T]:
        items = list(self._items)
        self._items.clear()
        self._bytes = 0
        self.ready.clear()
        return items

    @property
    def waiting_bytes(self) -> int:
        return self._bytes


def event_bytes(data: object, event_id: int | None = None, event: str | None = None) -> bytes:
    text = "" if event_id is None else f"id: {event_id}\n"
    text += "" if event is None else f"event: {event}\n"
    return (text + "data: " + json.dumps(data, separators=(",", ":")) + "\n\n").encode()


async def open_event_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no"})
    await response.prepare(request)
    return response


def client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


class ClientTooSlow(Exception):
    """The client could not take what was sent to it in time."""


async def write_within(response: web.StreamResponse, data: bytes, timeout: float) -> None:
    """One write that fails with ClientTooSlow if the client does not take it in time."""
    try:
        await asyncio.wait_for(response.write(data), timeout)
    except TimeoutError:
        raise ClientTooSlow from None


async def send_stream(request: web.Request, response: web.StreamResponse, outbox: Outbox[T],
                      *, render: Callable[[T], bytes], resume_hint: Callable[[], str],
                      settings: StreamSettings, closing: asyncio.Event) -> None:
    """Send what the outbox collects until the client goes, falls behind, or the server stops.
    `resume_hint` says, in the overflow message, how to continue from the last item sent."""
    last_write = time.monotonic()
    closed = spawn(closing.wait(), name="stream-closing")
    try:
        while not closing.is_set():
            if client_gone(request):
                return
            if outbox.overflowed:
                await _drop(request, response, outbox, resume_hint(), settings)
                return
            data = b"".join(render(item) for item in outbox.take())
            if data:
                await write_within(response, data, settings.send_timeout_seconds)
                last_write = time.monotonic()
                continue
            idle = time.monotonic() - last_write
            if idle >= settings.keepalive_seconds:
                await write_within(response, KEEPALIVE, settings.send_timeout_seconds)
                last_write = time.monotonic()
                continue
            wait = min(settings.liveness_seconds, settings.keepalive_seconds - idle)
            ready = spawn(outbox.ready.wait(), name="stream-ready")
            try:
                await asyncio.wait({ready, closed}, timeout=wait,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                ready.cancel()
    except ClientTooSlow:
        abort(request, response)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        closed.cancel()


async def _drop(request: web.Request, response: web.StreamResponse, outbox: Outbox[T],
                hint: str, settings: StreamSettings) -> None:
    message = (f"client too slow: more than {outbox.limit_bytes} bytes waited to be sent to "
               f"it, so the stream is closed; {hint}")
    try:
        # A short wait: this client is already known to be behind.
        await write_within(response, event_bytes({"error": message}, event="error"),
                           min(settings.send_timeout_seconds, 5.0))
    except ClientTooSlow:
        abort(request, response)
        return
    response.force_close()


def abort(request: web.Request, response: web.StreamResponse) -> None:
    """Close at once: a client that does not read would keep a graceful close waiting."""
    response.force_close()
    transport = request.transport
    if transport is not None:
        with contextlib.suppress(OSError, RuntimeError):
            transport.abort()
