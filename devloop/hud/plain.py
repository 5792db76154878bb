"""Plain output: prefixed log lines (`--stream`, no TTY, `devloop ci`) and the ci summary.

Where each update's time went reaches these lines as the resource's own log line (the
engine writes it, see `devloop.engine.trace`); the ci summary repeats it per resource.

Why plain lines at all: a log file, a CI job or a pipe to grep wants one line per log line,
in order, with the resource it came from; no cursor movement, no redraws.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from typing import Protocol, TextIO

from rich import box
from rich.console import Console
from rich.table import Table

from devloop.engine.logs import LogLine, LogStore
from devloop.engine.store import Store
from devloop.hud.table import last_build

# Wide enough for most resource names so the │ column lines up; longer names push it.
PREFIX_WIDTH = 14


def format_line(line: LogLine) -> str:
    """`<resource padded> │ [pod] text`, the form `devloop up --stream` prints."""
    lead = f"{line.resource:>{PREFIX_WIDTH}} │ "
    if line.prefix:
        lead += f"[{line.prefix}] "
    return lead + line.text


class PlainPrinter:
    """Prints every log line as it arrives; a LogStore listener."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def __call__(self, line: LogLine) -> None:
        # Looked up per call so pytest's capsys and redirected stdout are honoured.
        stream = self._stream if self._stream is not None else sys.stdout
        print(format_line(line), file=stream, flush=True)

    def attach(self, logs: LogStore) -> None:
        """Print what is already kept, then every new line. Synchronous on the loop, so no
        line can slip in between the backlog and the listener."""
        for line in logs.lines():
            self(line)
        logs.add_listener(self)


class ResourceViewLike(Protocol):
    """What ci_summary needs of the engine's ResourceView."""

    @property
    def name(self) -> str: ...


class OutcomeLike(Protocol):
    """What ci_summary needs of devloop.engine.ci.CiOutcome."""

    @property
    def ok(self) -> bool: ...

    @property
    def failed_resource(self) -> str: ...

    @property
    def message(self) -> str: ...


def time_lines(names: Iterable[str], store: Store) -> list[str]:
    """Where each resource's last update spent its time, from its build's trace:
    `api  3.1 s: build 2.2 s, push 0.4 s, rollout 0.5 s` (a trace still waiting for its
    rollout or readiness says so)."""
    rows: list[tuple[str, str]] = []
    for name in names:
        obj = store.get("resource", name)
        builds = int((obj.status if obj else {}).get("builds", 0) or 0)
        build = last_build(store, name, builds)
        trace = build.status.get("trace") if build else None
        if not isinstance(trace, dict) or not trace.get("summary"):
            continue
        state = str(trace.get("state", ""))
        note = {"waiting": " (not ready yet)", "superseded": " (replaced by the next update)",
                "failed": " (failed)"}.get(state, "")
        rows.append((name, f"{trace['summary']}{note}"))
    width = max((len(name) for name, _ in rows), default=0)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


# How many lines of the failing resource's log the summary repeats: enough to show a stack
# trace, few enough that the SUCCESS/ERROR verdict stays on screen.
FAILED_LOG_LINES = 40


def ci_summary(views: Iterable[ResourceViewLike], store: Store, logs: LogStore,
               outcome: OutcomeLike, *, width: int = 100) -> str:
    """The table `devloop ci` prints at the end, then SUCCESS or ERROR and, on error, the
    failing resource's last log lines. Plain text (no colour codes): it ends up in CI logs."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("RESOURCE", "UPDATE", "RUNTIME", "BUILDS", "LAST DURATION"):
        table.add_column(column, no_wrap=column != "RUNTIME")
    views = list(views)
    for view in views:
        obj = store.get("resource", view.name)
        status = obj.status if obj else {}
        build = last_build(store, view.name, int(status.get("builds", 0) or 0))
        duration = f"{build.status.get('duration', 0):.1f}s" if build else "-"
        runtime = str(status.get("runtimeStatus", "unknown"))
        if status.get("runtimeReason"):
            runtime += f" ({status['runtimeReason']})"
        update = str(status.get("updateStatus", "none"))
        if status.get("enabled") is False:
            update = "disabled"
        table.add_row(view.name, update, runtime, str(status.get("builds", 0)), duration)
    console = Console(width=width, no_color=True, force_terminal=False, record=True,
                      file=_Discard(), highlight=False)
    console.print(table)
    names = [view.name for view in views]
    times = time_lines(names, store)
    if times:
        console.print("Where the time went (each resource's last update, until ready):")
        for line in times:
            console.print(line, markup=False, soft_wrap=True, highlight=False)
    if outcome.ok:
        console.print("SUCCESS. All workloads are healthy.")
    else:
        console.print(f"ERROR: resource {outcome.failed_resource!r}: {outcome.message}")
        if outcome.failed_resource:
            console.print(f"Last log lines of {outcome.failed_resource}:")
            for text in logs.tail(outcome.failed_resource, FAILED_LOG_LINES):
                console.print(f"  {text}", markup=False, soft_wrap=True)
    # Table cells are padded to the column width; CI logs do not need the trailing blanks.
    return "".join(line.rstrip() + "\n"
                   for line in console.export_text(styles=False).splitlines())


class _Discard(io.StringIO):
    """A file that drops writes: the summary is taken from the console's record."""

    def write(self, text: str) -> int:
        return len(text)

