"""`GET /api/v1/logs`: search everything kept, page through it, and follow new lines.

Filtering happens here, not in the browser, so a dashboard showing one resource of a chatty
app receives only that resource's lines.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from devloop.engine.logs import LogLine, LogStore
from devloop.server.watch import (
    KEEPALIVE,
    Next,
    event_bytes,
    next_item,
    open_event_stream,
    parse_version,
)

SOURCES = frozenset({"build", "runtime", "local", "tiltfile"})


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

    resource: str | None
    query: str
    sources: frozenset[str]
    since: int
    before: int | None
    limit: int | None

    @classmethod
    def parse(cls, request: web.Request) -> LogQuery:
        params = request.query
        sources = frozenset(s for s in params.get("source", "").split(",") if s)
        unknown = sources - SOURCES
        if unknown:
            raise _bad_request(f"unknown source {sorted(unknown)[0]!r}: use one of "
                               + ", ".join(sorted(SOURCES)))
        since = parse_version(params.get("since") or request.headers.get("Last-Event-ID"))
        limit = parse_version(params.get("limit"))
        if limit is not None and limit < 0:
            raise _bad_request("limit must be 0 or more")
        return cls(resource=params.get("resource") or None, query=params.get("q", ""),
                   sources=sources, since=since or 0, before=parse_version(params.get("before")),
                   limit=limit)

    def matches(self, line: LogLine) -> bool:
        """For followed lines; LogStore.lines() already applied resource/since/query."""
        return ((self.resource is None or line.resource == self.resource)
                and (not self.sources or line.source in self.sources)
                and (not self.query or self.query.lower() in line.text.lower()))

    def select(self, logs: LogStore) -> list[LogLine]:
        lines = logs.lines(self.resource, since=self.since, query=self.query)
        if self.sources:
            lines = [line for line in lines if line.source in self.sources]
        if self.before is not None:
            lines = [line for line in lines if line.seq < self.before]
        if self.limit is not None:
            lines = lines[max(0, len(lines) - self.limit):] if self.limit else []
        return lines


class LogsApi:
    def __init__(self, logs: LogStore, resource_names: Callable[[], list[str]], *,
                 keepalive_seconds: float, closing: asyncio.Event) -> None:
        self.logs = logs
        self.resource_names = resource_names
        self.keepalive_seconds = keepalive_seconds
        self.closing = closing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = LogQuery.parse(request)
        if request.query.get("follow", "") not in ("", "0", "false"):
            return await self._follow(request, query)
        lines = query.select(self.logs)
        names = {line.resource for line in lines} | set(self.resource_names())
        if query.resource:
            names = {query.resource}
        dropped = {name: self.logs.dropped(name) for name in sorted(names)
                   if self.logs.dropped(name) or name == query.resource}
        last = lines[-1].seq if lines else query.since
        return web.json_response({"lines": [line_json(line) for line in lines],
                                  "dropped": dropped, "last": last})

    async def _follow(self, request: web.Request, query: LogQuery) -> web.StreamResponse:
        response = await open_event_stream(request)
        # Subscribe before reading the backlog, with no await between: no line falls in a gap.
        queue = self.logs.subscribe()
        backlog = query.select(self.logs)
        last = backlog[-1].seq if backlog else query.since
        pending: asyncio.Task[LogLine] | None = None
        try:
            for line in backlog:
                await response.write(event_bytes(line_json(line), line.seq))
            while True:
                pending, state = await next_item(queue, pending, closing=self.closing,
                                                 keepalive_seconds=self.keepalive_seconds)
                if state == Next.CLOSING:
                    break
                if state == Next.IDLE:
                    await response.write(KEEPALIVE)
                    continue
                line, pending = pending.result(), None
                if line.seq > last and query.matches(line):
                    await response.write(event_bytes(line_json(line), line.seq))
        except ConnectionResetError:
            pass  # the client went away
        finally:
            if pending is not None:
                pending.cancel()
            self.logs.unsubscribe(queue)
        return response
