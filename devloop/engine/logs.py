"""Per-resource logs kept in memory up to a byte budget, with a visible drop marker.

Why a byte budget and not back-pressure: a chatty pod must never stall the engine. Old
lines are dropped from the front; the count of dropped lines is kept and shown.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: float
    resource: str
    source: str  # "build", "runtime", "tiltfile", "local"
    text: str
    prefix: str = ""  # pod/container


@dataclass
class _ResourceLog:
    lines: deque[LogLine] = field(default_factory=deque)
    size: int = 0
    dropped: int = 0


@dataclass
class LogStore:
    budget_bytes: int = DEFAULT_BUDGET_BYTES
    _logs: dict[str, _ResourceLog] = field(default_factory=dict)
    _seq: int = 0
    _subscribers: list[asyncio.Queue[LogLine]] = field(default_factory=list)
    _listeners: list[Callable[[LogLine], None]] = field(default_factory=list)

    def append(self, resource: str, text: str, *, source: str = "runtime",
               prefix: str = "") -> None:
        for part in text.splitlines() or [""]:
            self._append_line(resource, part, source, prefix)

    def _append_line(self, resource: str, text: str, source: str, prefix: str) -> None:
        self._seq += 1
        line = LogLine(self._seq, time.time(), resource, source, text, prefix)
        log = self._logs.setdefault(resource, _ResourceLog())
        log.lines.append(line)
        log.size += len(text) + 1
        while log.size > self.budget_bytes and len(log.lines) > 1:
            old = log.lines.popleft()
            log.size -= len(old.text) + 1
            log.dropped += 1
        for queue in self._subscribers:
            queue.put_nowait(line)
        for listener in self._listeners:
            listener(line)

    def lines(self, resource: str | None = None, *, since: int = 0,
              query: str = "") -> list[LogLine]:
        logs = [self._logs[resource]] if resource in self._logs else (
            [] if resource else list(self._logs.values()))
        out = [line for log in logs for line in log.lines
               if line.seq > since and (not query or query.lower() in line.text.lower())]
        out.sort(key=lambda line: line.seq)
        return out

    def dropped(self, resource: str) -> int:
        log = self._logs.get(resource)
        return log.dropped if log else 0

    def tail(self, resource: str, count: int) -> list[str]:
        log = self._logs.get(resource)
        if not log:
            return []
        lines = [f"{line.prefix} {line.text}".strip() if line.prefix else line.text
                 for line in list(log.lines)[-count:]]
        if log.dropped and len(lines) == len(log.lines):
            lines.insert(0, f"[... {log.dropped} older lines dropped ...]")
        return lines

    def subscribe(self) -> asyncio.Queue[LogLine]:
        queue: asyncio.Queue[LogLine] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LogLine]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def add_listener(self, listener: Callable[[LogLine], None]) -> None:
        self._listeners.append(listener)
