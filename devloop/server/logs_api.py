"""`GET /api/v1/logs`: search everything kept, page through it, and follow new lines.

Filtering happens here, not in the browser, so a dashboard showing one resource of a chatty
app receives only that resource's lines. Every answer is bounded: a page holds at most
`limit` lines (DEFAULT_LIMIT when not given, never more than MAX_LIMIT), `more` says whether
older matching lines exist, and `before=<seq of the first line>` fetches them. A search
pauses between chunks of stored lines, so a search over every kept line never holds the
daemon's loop for long.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devloop.engine.logs import LineRef, LogFilter, LogLine, LogStore
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
from devloop.server.watch import parse_version, resume_version

SOURCES = frozenset({"build", "runtime", "local", "tiltfile"})
# A page of 1,000 lines is a few hundred KB of JSON; 10,000 (about 3 MB) is serialised in a
# few tens of ms. Round figures, chosen so one request never holds the loop for long.
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
# Chunks of stored lines searched between pauses for the rest of the loop.
CHUNKS_PER_PAUSE = 8
# What one followed line costs in a client's buffer besides its text: the LogLine and its
# JSON envelope (measured: about 250 bytes).
LINE_COST_BYTES = 250


def line_json(line: LogLine) -> dict[str, Any]:
    return {"seq": line.seq, "time": line.time, "resource": line.resource,
            "source": line.source, "prefix": line.prefix, "text": line.text}


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}),
                              content_type="application/json")


@dataclass(frozen=True)
class LogQuery:
    """The filters of one request: `resource`, `q` (case-insensitive substring), `source`
    (one or several, comma-separated), `since`/`before` (exclusive seq bounds), `limit`
    (the newest N matching lines)."""

    wanted: LogFilter
    limit: int

    @classmethod
    def parse(cls, request: web.Request) -> LogQuery:
        params = request.query
        sources = frozenset(s for s in params.get("source", "").split(",") if s)
        unknown = sources - SOURCES
        if unknown:
            raise _bad_request(f"unknown source {sorted(unknown)[0]!r}: use one of "
                               + ", ".join(sorted(SOURCES)))
        since = resume_version(request, "since")
        raw_limit = params.get("limit")
        limit = int(raw_limit) if raw_limit and re.fullmatch("[0-9]{1,9}", raw_limit) else -1
        if raw_limit is not None and not 0 <= limit <= MAX_LIMIT:
            raise _bad_request(f"limit must be from 0 to {MAX_LIMIT}; page back with "
                               "before=<seq of the oldest line received>")
        wanted = LogFilter(resource=params.get("resource") or None, query=params.get("q", ""),
                           sources=sources, since=max(since or 0, 0),
                           before=parse_version(params.get("before")))
        return cls(wanted=wanted, limit=DEFAULT_LIMIT if raw_limit is None else limit)

    async def select(self, logs: LogStore) -> tuple[list[LogLine], bool]:
        """The newest `limit` matching lines in order, and whether older ones match too.

        A k-way merge, newest first, of each resource's matches: a resource is read one chunk
        at a time and only as far as the page needs, and only the lines of the page are made
        into LogLines. Every CHUNKS_PER_PAUSE chunks read, the loop gets a turn."""
        wanted = self.wanted
        names = [wanted.resource] if wanted.resource is not None else logs.resources()
        scans = [logs.scan_refs(name, wanted) for name in names]
        waiting: list[deque[LineRef]] = [deque() for _ in scans]
        scanned = 0

        async def refill(which: int) -> bool:
            nonlocal scanned
            for batch in scans[which]:  # resumes where the last refill stopped
                scanned += 1
                if scanned % CHUNKS_PER_PAUSE == 0:
                    await asyncio.sleep(0)
                if batch:
                    waiting[which].extend(batch)
                    return True
            return False

        heap: list[tuple[int, int]] = []  # (-seq, which) of each resource's newest waiting
        for which in range(len(scans)):
            if await refill(which):
                heap.append((-waiting[which][0][0], which))
        heapq.heapify(heap)
        page: list[LineRef] = []
        while heap and len(page) <= self.limit:
            _, which = heapq.heappop(heap)
            page.append(waiting[which].popleft())
            if waiting[which] or await refill(which):
                heapq.heappush(heap, (-waiting[which][0][0], which))
        more = len(page) > self.limit
        return [logs.line(ref) for ref in reversed(page[:self.limit])], more


class LogsApi:
    def __init__(self, logs: LogStore, resource_names: Callable[[], list[str]], *,
                 settings: StreamSettings, closing: asyncio.Event) -> None:
        self.logs = logs
        self.resource_names = resource_names
        self.settings = settings
        self.closing = closing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = LogQuery.parse(request)
        if request.query.get("follow", "") not in ("", "0", "false"):
            return await self._follow(request, query)
        lines, more = await query.select(self.logs)
        resource = query.wanted.resource
        names = {line.resource for line in lines} | set(self.resource_names())
        if resource:
            names = {resource}
        dropped = {name: self.logs.dropped(name) for name in sorted(names)
                   if self.logs.dropped(name) or name == resource}
        last = lines[-1].seq if lines else query.wanted.since
        return web.json_response({"lines": [line_json(line) for line in lines],
                                  "dropped": dropped, "last": last, "more": more})

    async def _follow(self, request: web.Request, query: LogQuery) -> web.StreamResponse:
        """The newest `limit` matching lines after `since`, then new ones as they come."""
        response = web.StreamResponse()
        try:
            response = await open_event_stream(request)
        except ConnectionResetError:
            return response  # the client went away before the stream started
        wanted = query.wanted
        live = LogFilter(resource=wanted.resource, query=wanted.query, sources=wanted.sources)
        outbox: Outbox[LogLine] = Outbox(
            accept=live.matches, cost=lambda line: len(line.text) + LINE_COST_BYTES,
            limit_bytes=self.settings.buffer_bytes)
        # Listen before searching the backlog: a line appended while the search pauses is
        # then in the outbox, and skipped below if the backlog already has it.
        self.logs.add_listener(outbox.offer)
        sent = wanted.since
        try:
            backlog, _ = await query.select(self.logs)
            if backlog:
                sent = backlog[-1].seq
                await write_within(response, b"".join(event_bytes(line_json(line), line.seq)
                                                      for line in backlog),
                                   self.settings.send_timeout_seconds)

            def render(line: LogLine) -> bytes:
                nonlocal sent
                if line.seq <= sent:
                    return b""
                sent = line.seq
                return event_bytes(line_json(line), line.seq)

            await send_stream(request, response, outbox, render=render,
                              resume_hint=lambda: f"resume with since={sent}",
                              settings=self.settings, closing=self.closing)
        except ClientTooSlow:
            abort(request, response)
        except ConnectionResetError:
            pass  # the client went away while the backlog was sent
        finally:
            self.logs.remove_listener(outbox.offer)
        return response
