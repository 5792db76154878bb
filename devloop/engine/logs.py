"""Per-resource logs kept in memory up to a byte budget, stored compactly, with a drop count.

Why a byte budget and not back-pressure: a chatty pod must never stall the engine. Old
lines are dropped from the front; the count of dropped lines is kept and shown.

Two budgets: one per resource (a resource never keeps more), and one for the whole session,
so memory does not grow with the number of resources (300 resources at 8 MiB each would be
2.4 GB). Over the session's budget, the resource that keeps the most drops its oldest
lines: a chatty resource gives way first, and a quiet one keeps its history.

Why compact storage: one Python object per line (a dataclass, its float, int and str) costs
about 200 bytes beyond the text, so a budget of short lines cost ten times its size in RSS.
Lines are kept in chunks instead: the UTF-8 text of a chunk's lines in one bytearray, and
their seq, time, end offset and (source, prefix) in typed arrays; a LogLine is made only
when read. The budget counts each line's text plus what its array entries cost, so it is
what the lines really take (within the arrays' growth slack and one chunk being filled).
"""

from __future__ import annotations

import asyncio
import bisect
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

DEFAULT_BUDGET_BYTES = 8 * 1024 * 1024
# The whole session's lines. 64 MiB keeps about 600,000 lines of 100 characters, eight
# resources' full budgets, and holds the daemon near 100 MB of memory with any number of
# resources; a round figure, not a measured optimum.
DEFAULT_TOTAL_BUDGET_BYTES = 64 * 1024 * 1024
# Over the session's budget, lines are dropped until this fraction of it is free again, so
# finding the largest resource (a pass over all of them) happens once per many lines.
TOTAL_BUDGET_SLACK = 1 / 64
# The arrays' entries per line: seq (8), time (8), end offset (4), (source, prefix) index (4).
LINE_OVERHEAD_BYTES = 24
# A chunk is sealed at this many lines or text bytes; small beside the budget, so dropping
# whole chunks frees memory smoothly, large enough that per-chunk objects cost little.
CHUNK_LINES = 2048
CHUNK_BYTES = 64 * 1024
# Text is stored as UTF-8; "surrogatepass" keeps any str (even a lone surrogate) round-trip.
_ENCODING_ERRORS = "surrogatepass"


@dataclass(frozen=True, slots=True)
class LogLine:
    seq: int
    time: float
    resource: str
    source: str  # "build", "runtime", "tiltfile", "local"
    text: str
    prefix: str = ""  # pod/container


@dataclass(frozen=True)
class LogFilter:
    """Which lines a reader wants: `resource` (None: all), case-insensitive substring `query`,
    `sources` (empty: all), and exclusive seq bounds `since` and `before`."""

    resource: str | None = None
    query: str = ""
    sources: frozenset[str] = frozenset()
    since: int = 0
    before: int | None = None

    def matches(self, line: LogLine) -> bool:
        return ((self.resource is None or line.resource == self.resource)
                and (not self.sources or line.source in self.sources)
                and line.seq > self.since
                and (self.before is None or line.seq < self.before)
                and (not self.query or self.query.lower() in line.text.lower()))


class _Chunk:
    """Consecutive lines of one resource. Lines before `start` are dropped (the memory goes
    when the whole chunk does)."""

    __slots__ = ("seqs", "times", "ends", "metas", "text", "start", "ascii")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.times = array("d")
        # "I" is 4 bytes ("L" is 8 on 64-bit Linux): a chunk's text is far below 4 GiB.
        self.ends = array("I")  # end offset of each line's text in `text`
        self.metas = array("I")  # index into LogStore._metas: (source, prefix)
        self.text: bytearray | bytes = bytearray()  # bytes once sealed
        self.start = 0
        self.ascii = True  # every line ASCII: bytes.lower() is then exactly str.lower()

    def __len__(self) -> int:
        return len(self.seqs)

    def full(self) -> bool:
        return len(self.seqs) >= CHUNK_LINES or len(self.text) >= CHUNK_BYTES

    def seal(self) -> None:
        """No more lines come: drop the slack that growing the buffers left (bytearray and
        array over-allocate by an eighth or so as they grow)."""
        self.text = bytes(self.text)
        # A slice of an array is allocated to its exact size.
        self.seqs, self.times = self.seqs[:], self.times[:]
        self.ends, self.metas = self.ends[:], self.metas[:]

    def raw(self, index: int) -> bytes:
        begin = self.ends[index - 1] if index else 0
        return bytes(self.text[begin:self.ends[index]])

    def matching(self, query: str, begin: int, end: int) -> Iterator[int]:
        """Indexes in [begin, end) whose text contains `query` (case-insensitive), newest
        first."""
        if not query:
            yield from range(end - 1, begin - 1, -1)
            return
        if begin >= end:
            return
        lowered = query.lower()
        if self.ascii:
            needle = lowered.encode("utf-8", _ENCODING_ERRORS)
            low = self.text[self.ends[begin - 1] if begin else 0:self.ends[end - 1]].lower()
            base = self.ends[begin - 1] if begin else 0
            found: list[int] = []
            position = low.find(needle)
            while position >= 0:
                index = bisect.bisect_right(self.ends, base + position, begin, end)
                if index >= end:
                    break
                if base + position + len(needle) <= self.ends[index]:
                    found.append(index)
                position = low.find(needle, self.ends[index] - base)
            yield from reversed(found)
            return
        for index in range(end - 1, begin - 1, -1):
            if lowered in self.raw(index).decode("utf-8", _ENCODING_ERRORS).lower():
                yield index


# A kept line not yet made into a LogLine: (seq, resource, chunk, index in the chunk).
LineRef = tuple[int, str, _Chunk, int]


@dataclass
class _ResourceLog:
    chunks: deque[_Chunk] = field(default_factory=deque)
    size: int = 0
    count: int = 0  # lines kept
    dropped: int = 0


@dataclass
class LogStore:
    budget_bytes: int = DEFAULT_BUDGET_BYTES  # per resource
    total_budget_bytes: int = DEFAULT_TOTAL_BUDGET_BYTES  # the whole session
    _logs: dict[str, _ResourceLog] = field(default_factory=dict)
    _total: int = 0  # bytes kept over all resources, counted as `_ResourceLog.size`
    _seq: int = 0
    _metas: list[tuple[str, str]] = field(default_factory=list)
    _meta_index: dict[tuple[str, str], int] = field(default_factory=dict)
    _subscribers: list[asyncio.Queue[LogLine]] = field(default_factory=list)
    _listeners: list[Callable[[LogLine], None]] = field(default_factory=list)

    def append(self, resource: str, text: str, *, source: str = "runtime",
               prefix: str = "") -> None:
        for part in text.splitlines() or [""]:
            self._append_line(resource, part, source, prefix)

    def _append_line(self, resource: str, text: str, source: str, prefix: str) -> None:
        self._seq += 1
        now = time.time()
        log = self._logs.setdefault(resource, _ResourceLog())
        if not log.chunks or log.chunks[-1].full():
            if log.chunks:
                log.chunks[-1].seal()
            log.chunks.append(_Chunk())
        chunk = log.chunks[-1]
        data = text.encode("utf-8", _ENCODING_ERRORS)
        chunk.seqs.append(self._seq)
        chunk.times.append(now)
        chunk.text += data
        chunk.ends.append(len(chunk.text))
        chunk.metas.append(self._meta(source, prefix))
        chunk.ascii = chunk.ascii and len(data) == len(text)
        cost = len(data) + LINE_OVERHEAD_BYTES
        log.size += cost
        log.count += 1
        self._total += cost
        while log.size > self.budget_bytes and log.count > 1:
            self._total -= self._drop_oldest(log)
        if self._total > self.total_budget_bytes:
            self._shrink_to(self.total_budget_bytes * (1 - TOTAL_BUDGET_SLACK))
        if self._subscribers or self._listeners:
            line = LogLine(self._seq, now, resource, source, text, prefix)
            for queue in self._subscribers:
                queue.put_nowait(line)
            for listener in list(self._listeners):
                listener(line)

    def _meta(self, source: str, prefix: str) -> int:
        key = (source, prefix)
        index = self._meta_index.get(key)
        if index is None:
            index = self._meta_index[key] = len(self._metas)
            self._metas.append(key)
        return index

    def _shrink_to(self, target: float) -> None:
        """Drop the oldest lines of the largest logs until the session keeps `target` bytes:
        every log above a common level is cut down to it (each keeps its newest line)."""
        excess = self._total - target
        logs = sorted(self._logs.values(), key=lambda log: log.size, reverse=True)
        # The level: the largest L with sum(size - L over logs above L) >= excess.
        level, above = 0.0, 0
        for index, log in enumerate(logs):
            above += log.size
            following = logs[index + 1].size if index + 1 < len(logs) else 0
            if above - (index + 1) * following >= excess:
                level = (above - excess) / (index + 1)
                break
        for log in logs:
            if log.size <= level:
                break
            while log.size > level and log.count > 1:
                self._total -= self._drop_oldest(log)

    @staticmethod
    def _drop_oldest(log: _ResourceLog) -> int:
        """Drop the log's oldest line; returns the bytes it counted for."""
        chunk = log.chunks[0]
        begin = chunk.ends[chunk.start - 1] if chunk.start else 0
        cost = chunk.ends[chunk.start] - begin + LINE_OVERHEAD_BYTES
        log.size -= cost
        chunk.start += 1
        log.count -= 1
        log.dropped += 1
        if chunk.start >= len(chunk):
            log.chunks.popleft()
        return cost

    def _line(self, resource: str, chunk: _Chunk, index: int) -> LogLine:
        source, prefix = self._metas[chunk.metas[index]]
        return LogLine(chunk.seqs[index], chunk.times[index], resource, source,
                       chunk.raw(index).decode("utf-8", _ENCODING_ERRORS), prefix)

    def resources(self) -> list[str]:
        return list(self._logs)

    def scan(self, resource: str, wanted: LogFilter) -> Iterator[list[LogLine]]:
        """The resource's kept lines that `wanted` matches, newest first, one list per chunk
        (possibly empty), so a caller can stop early or pause between chunks. It reads the
        chunks present when it starts: appends and drops meanwhile do not disturb it."""
        for batch in self.scan_refs(resource, wanted):
            yield [self.line(ref) for ref in batch]

    def scan_refs(self, resource: str, wanted: LogFilter) -> Iterator[list[LineRef]]:
        """As `scan`, with references (seq first) instead of lines: `line()` makes a LogLine
        of one, so a reader that needs a few of many matches makes only those."""
        log = self._logs.get(resource)
        if log is None:
            return
        chunks = list(log.chunks)
        limits = [len(chunk) for chunk in chunks]
        for chunk, end in zip(reversed(chunks), reversed(limits), strict=True):
            if not end or chunk.seqs[end - 1] <= wanted.since:
                return  # this and all older chunks are at or before `since`
            start = min(chunk.start, end)
            if start >= end or (wanted.before is not None
                                and chunk.seqs[start] >= wanted.before):
                yield []
                continue
            begin = max(start, bisect.bisect_right(chunk.seqs, wanted.since, 0, end))
            if wanted.before is not None:
                end = bisect.bisect_left(chunk.seqs, wanted.before, begin, end)
            seqs, metas = chunk.seqs, chunk.metas
            yield [(seqs[index], resource, chunk, index)
                   for index in chunk.matching(wanted.query, begin, end)
                   if not wanted.sources
                   or self._metas[metas[index]][0] in wanted.sources]

    def line(self, ref: LineRef) -> LogLine:
        _, resource, chunk, index = ref
        return self._line(resource, chunk, index)

    def lines(self, resource: str | None = None, *, since: int = 0,
              query: str = "") -> list[LogLine]:
        """Every kept line (of one resource, or all), in order. For small logs and tests; the
        API pages through `scan` instead."""
        names = [resource] if resource is not None else list(self._logs)
        wanted = LogFilter(query=query, since=since)
        refs = [ref for name in names for batch in self.scan_refs(name, wanted)
                for ref in batch]
        refs.sort(key=lambda ref: ref[0])
        return [self.line(ref) for ref in refs]

    def recent(self, resource: str | None, count: int) -> list[LogLine]:
        """The newest `count` kept lines (of one resource, or all), in order. Reads only the
        newest chunks of each resource, so a terminal redraw costs the screen, not the log."""
        if count <= 0:
            return []
        names = [resource] if resource is not None else list(self._logs)
        refs: list[LineRef] = []
        for name in names:
            taken = 0
            for batch in self.scan_refs(name, LogFilter()):
                refs.extend(batch)
                taken += len(batch)
                if taken >= count:
                    break
        refs.sort(key=lambda ref: ref[0])
        return [self.line(ref) for ref in refs[-count:]]

    def dropped(self, resource: str) -> int:
        log = self._logs.get(resource)
        return log.dropped if log else 0

    def tail(self, resource: str, count: int) -> list[str]:
        log = self._logs.get(resource)
        if not log or count <= 0:
            return []
        kept: list[LineRef] = []
        for batch in self.scan_refs(resource, LogFilter()):
            kept[:0] = reversed(batch)
            if len(kept) >= count:
                break
        lines = [f"{line.prefix} {line.text}".strip() if line.prefix else line.text
                 for line in map(self.line, kept[-count:])]
        if log.dropped and len(lines) == log.count:
            lines.insert(0, f"[... {log.dropped} older lines dropped ...]")
        return lines

    def subscribe(self) -> asyncio.Queue[LogLine]:
        """Every new line, for an in-process reader that keeps up (the terminal UI)."""
        queue: asyncio.Queue[LogLine] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[LogLine]) -> None:
        if queue in self._subscribers:
            self._subscribers.remove(queue)

    def add_listener(self, listener: Callable[[LogLine], None]) -> None:
        """Called with each new line, synchronously: it must be quick and must not raise (the
        API's followers filter here and queue into a bounded per-client buffer)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[LogLine], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
