"""Turn BuildKit's progress stream (`docker buildx build --progress=rawjson`) into log lines.

Each input line is one JSON `SolveStatus` (vertexes, statuses, logs, warnings), each
update to a step repeating the step's digest. The lines produced read like Docker's own
`--progress=plain` output, one per event, as soon as it arrives:

    #3 [2/4] RUN pip install -r requirements.txt
    #3 1.204 Collecting flask
    #3 DONE 4.1s
    #4 [3/4] COPY . /app
    #4 CACHED

so the resource's log shows the step, whether it was cached, and how long it took.
Each finished step is also a step of the `build` phase of the current update's trace
(`devloop.model.trace`), with BuildKit's own start and end times and whether it was cached.
Auxiliary steps (`[internal] ...` loading the Dockerfile, the context or metadata,
`copy /context /`, `exporting to image`) are shown only when they fail, print output or
take a noticeable time, to keep a rebuild's log short: Dockerfile steps are the ones named
`[N/M] ...` or `[stage N/M] ...`.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devloop.model import trace

LogFn = Callable[[str], None]
# Internal steps (loading the context, exporting) this long or longer are in the trace.
INTERNAL_TRACED_AFTER_SECONDS = 0.1

# An internal step shorter than this stays out of the log (loading a small context or
# the Dockerfile takes milliseconds; resolving a base image over a slow network does not).
INTERNAL_SHOWN_AFTER_SECONDS = 1.0
# Lines of a failed step kept for the error's excerpt.
FAILED_STEP_TAIL = 40


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class _Step:
    number: int
    name: str
    started: datetime | None = None
    announced: bool = False
    finished: bool = False
    partial: str = ""
    lines: list[str] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        return not self.name.startswith("[") or self.name.startswith(("[internal]", "[auth]"))


@dataclass(frozen=True)
class FailedStep:
    name: str
    error: str
    tail: tuple[str, ...]


class ProgressRenderer:
    """Feed it stderr lines of `buildx build --progress=rawjson`; it calls `emit` per line."""

    def __init__(self, emit: LogFn) -> None:
        self._emit = emit
        self._steps: dict[str, _Step] = {}
        self.failed: FailedStep | None = None
        self.other_lines: list[str] = []  # non-JSON output (buildx's own ERROR lines)

    def feed_line(self, line: str) -> None:
        text = line.rstrip("\r\n")
        if not text.startswith("{"):
            if text.strip():
                self.other_lines.append(text)
                self._emit(text)
            return
        try:
            status = json.loads(text)
        except ValueError:
            self.other_lines.append(text)
            self._emit(text)
            return
        if isinstance(status, dict):
            self.feed_status(status)

    def feed_status(self, status: dict[str, Any]) -> None:
        for vertex in status.get("vertexes") or []:
            self._vertex(vertex)
        for entry in status.get("logs") or []:
            self._log(entry)
        for warning in status.get("warnings") or []:
            short = _decode(warning.get("short"))
            if short:
                self._emit(f"WARNING: {short.strip()}")

    def _step(self, digest: str, name: str = "") -> _Step:
        step = self._steps.get(digest)
        if step is None:
            step = _Step(number=len(self._steps) + 1, name=name or digest[:19])
            self._steps[digest] = step
        elif name and step.name != name:
            step.name = name
        return step

    def _announce(self, step: _Step) -> None:
        if not step.announced:
            step.announced = True
            self._emit(f"#{step.number} {step.name}")

    def _vertex(self, vertex: dict[str, Any]) -> None:
        digest = str(vertex.get("digest") or "")
        if not digest:
            return
        step = self._step(digest, str(vertex.get("name") or ""))
        started = _time(vertex.get("started"))
        completed = _time(vertex.get("completed"))
        if started and step.started is None:
            step.started = started
        if step.finished:
            return
        error = str(vertex.get("error") or "")
        cached = bool(vertex.get("cached"))
        if not step.internal and (started or cached):
            self._announce(step)
        if error:
            self._flush(step)
            self._announce(step)
            step.finished = True
            self._emit(f"#{step.number} ERROR: {error}")
            if self.failed is None or self.failed.error in error:
                self.failed = FailedStep(step.name, error, tuple(step.lines[-FAILED_STEP_TAIL:]))
            self._trace(step, completed, error=error)
            return
        if cached and (completed or not started):
            step.finished = True
            if not step.internal:
                self._emit(f"#{step.number} CACHED")
            self._trace(step, completed, cached=True)
            return
        if completed:
            self._flush(step)
            step.finished = True
            self._trace(step, completed)
            seconds = (completed - step.started).total_seconds() if step.started else 0.0
            if step.internal and seconds < INTERNAL_SHOWN_AFTER_SECONDS and not step.lines:
                return
            self._announce(step)
            self._emit(f"#{step.number} DONE {seconds:.1f}s")

    def _trace(self, step: _Step, completed: datetime | None, **attrs: Any) -> None:
        """The finished step as a step of the update trace's build phase."""
        # A step BuildKit found cached may come with no times at all: it took no time now.
        end = completed.timestamp() if completed else time.time()
        start = step.started.timestamp() if step.started else end
        if step.internal and end - start < INTERNAL_TRACED_AFTER_SECONDS:
            return
        trace.step(step.name, start, end, parent=trace.Phase.BUILD, number=step.number,
                   **attrs)

    def _log(self, entry: dict[str, Any]) -> None:
        digest = str(entry.get("vertex") or "")
        step = self._step(digest)
        data = _decode(entry.get("data"))
        if not data:
            return
        self._announce(step)
        stamp = _time(entry.get("timestamp"))
        elapsed = ""
        if stamp and step.started:
            elapsed = f"{max(0.0, (stamp - step.started).total_seconds()):.3f} "
        text = step.partial + data
        *lines, step.partial = text.split("\n")
        for line in lines:
            self._line(step, elapsed, line.rstrip("\r"))

    def _line(self, step: _Step, elapsed: str, line: str) -> None:
        # Progress bars redraw with \r; only the last state of the line is worth keeping.
        line = line.rsplit("\r", 1)[-1]
        step.lines.append(line)
        if len(step.lines) > FAILED_STEP_TAIL * 2:
            del step.lines[:FAILED_STEP_TAIL]
        self._emit(f"#{step.number} {elapsed}{line}")

    def _flush(self, step: _Step) -> None:
        if step.partial:
            partial, step.partial = step.partial, ""
            self._line(step, "", partial)

    def finish(self) -> None:
        """Emit what is left of lines that did not end with a newline."""
        for step in self._steps.values():
            self._flush(step)


def _decode(value: Any) -> str:
    """`[]byte` fields arrive base64-encoded in Go's JSON."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        return base64.b64decode(value).decode("utf-8", errors="replace")
    except ValueError:
        return value
