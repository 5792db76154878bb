"""The resource table of the terminal UI, built purely from store snapshots.

Nothing here reads the terminal, the clock or a global: the same store gives the same
table, which is what the unit tests rely on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

from devloop.engine.store import Store, StoredObject
from devloop.model import kinds as k


@dataclass(frozen=True)
class ResourceRow:
    """One resource as the terminal UI shows it."""

    name: str
    type: str
    update: str  # none | pending | in_progress | ok | error
    runtime: str  # unknown | pending | ok | error | not_applicable
    runtime_reason: str = ""
    enabled: bool = True
    builds: int = 0
    last_duration: float | None = None
    last_finished: float | None = None  # epoch seconds
    endpoints: tuple[str, ...] = ()
    alerts: int = 0
    waiting: str = ""
    pending_changes: int = 0
    error: str = ""


def last_build(store: Store, resource: str, builds: int) -> StoredObject | None:
    """The newest finished build: while update #n runs, build n is not stored yet."""
    for number in (builds, builds - 1):
        if number > 0:
            build = store.get(k.BUILD.name, f"{resource}-{number}")
            if build is not None:
                return build
    return None


def resource_rows(store: Store) -> list[ResourceRow]:
    """Rows in store order, which is the Tiltfile's order (the engine publishes in it)."""
    alerts: dict[str, int] = {}
    for alert in store.list(k.ALERT.name):
        owner = k.AlertSpec.from_json(alert.spec).resource
        alerts[owner] = alerts.get(owner, 0) + 1
    forwards: dict[str, list[str]] = {}
    for forward in store.list(k.PORT_FORWARD.name):
        url = k.PortForwardStatus.from_json(forward.status).url
        if url:
            forwards.setdefault(k.PortForwardSpec.from_json(forward.spec).resource,
                                []).append(url)
    rows = []
    for obj in store.list(k.RESOURCE.name):
        status = k.ResourceStatus.from_json(obj.status)
        spec = k.ResourceSpec.from_json(obj.spec)
        build = last_build(store, obj.name, status.builds)
        duration = finished = None
        if build is not None:
            build_status = k.BuildStatus.from_json(build.status)
            duration = build_status.duration
            finished = build_status.start_time + duration
        endpoints = list(dict.fromkeys([*forwards.get(obj.name, []), *spec.links]))
        rows.append(ResourceRow(
            name=obj.name, type=spec.type, update=status.update_status,
            runtime=status.runtime_status, runtime_reason=status.runtime_reason,
            enabled=status.enabled, builds=status.builds,
            last_duration=duration, last_finished=finished, endpoints=tuple(endpoints),
            alerts=alerts.get(obj.name, 0), waiting=status.waiting,
            pending_changes=len(status.pending_changes), error=status.error))
    return rows


STYLES = {"ok": "green", "ready": "green", "error": "bold red", "pending": "yellow",
          "in_progress": "bold yellow", "building": "bold yellow", "unknown": "dim",
          "not_applicable": "dim", "none": "dim", "disabled": "dim"}


def status_style(state: str) -> str:
    return STYLES.get(state, "")


def overall(row: ResourceRow) -> str:
    """One word for the row, like the dashboard's: disabled, building, pending, error, ready."""
    if not row.enabled:
        return "disabled"
    if row.update == "error" or row.runtime == "error":
        return "error"
    if row.update == "in_progress":
        return "building"
    if row.update == "pending" or (row.runtime in ("pending", "unknown")
                                   and row.update != "none"):
        return "pending"
    if row.update == "ok":
        return "ready"
    return "idle"


def _update_cell(row: ResourceRow) -> Text:
    label = {"in_progress": "building", "none": "-"}.get(row.update, row.update)
    text = Text(label, style=status_style(row.update))
    if row.builds:
        text.append(f" #{row.builds}", style="dim")
    if row.last_duration is not None:
        text.append(f" {row.last_duration:.1f}s")
    if row.last_finished is not None:
        text.append(" " + time.strftime("%H:%M:%S", time.localtime(row.last_finished)),
                    style="dim")
    if row.pending_changes:
        text.append(f" +{row.pending_changes} changed", style="yellow")
    return text


def _runtime_cell(row: ResourceRow) -> Text:
    label = {"not_applicable": "-"}.get(row.runtime, row.runtime)
    text = Text(label, style=status_style(row.runtime))
    if row.runtime_reason:
        text.append(f" {row.runtime_reason}", style="dim" if row.runtime != "error" else "red")
    return text


# Free-text columns share what the fixed ones leave, in this order of importance; below this
# many cells a column is dropped rather than shown as a useless stub.
FREE_COLUMNS = ("RUNTIME", "ENDPOINTS", "WAITING")
MIN_FREE_WIDTH = 8
# Each column costs its cell padding (one space either side) and a divider on top of its text.
COLUMN_PADDING = 3


def _cells(row: ResourceRow, selected: bool) -> dict[str, Text]:
    state = overall(row)
    name = Text("▸ " if selected else "  ", style="bold cyan")
    name.append(row.name, style="bold" if selected else "")
    return {
        "RESOURCE": name, "TYPE": Text(row.type, style="dim"),
        "STATUS": Text(state, style=status_style(state)),
        "UPDATE": _update_cell(row), "RUNTIME": _runtime_cell(row),
        "ENDPOINTS": Text(" ".join(row.endpoints), style="cyan"),
        "ALERTS": Text(str(row.alerts), style="bold red") if row.alerts else Text("-", "dim"),
        "WAITING": Text(row.waiting, style="yellow"),
    }


def _widths(table_rows: list[dict[str, Text]], width: int) -> dict[str, int]:
    """Column widths that fit `width`: fixed columns at their natural width, free-text ones
    sharing the rest; free columns that would not get MIN_FREE_WIDTH are left out, the
    least important first, and TYPE goes before RUNTIME does."""
    natural = {column: max([len(column), *(cells[column].cell_len for cells in table_rows)])
               for column in ("RESOURCE", "TYPE", "STATUS", "UPDATE", "RUNTIME", "ENDPOINTS",
                              "ALERTS", "WAITING")}
    columns = [c for c in natural if c not in FREE_COLUMNS or any(
        cells[c].plain for cells in table_rows) or c == "RUNTIME"]
    drop_order = ["WAITING", "ENDPOINTS", "TYPE", "RUNTIME"]
    while True:
        fixed = [c for c in columns if c not in FREE_COLUMNS]
        free = [c for c in columns if c in FREE_COLUMNS]
        left = width - sum(natural[c] for c in fixed) - COLUMN_PADDING * len(columns)
        wanted = sum(natural[c] for c in free)
        if not free or left >= wanted or (free and left >= MIN_FREE_WIDTH * len(free)):
            break
        victim = next((c for c in drop_order if c in columns), None)
        if victim is None:
            break
        columns.remove(victim)
    widths = {c: natural[c] for c in columns if c not in FREE_COLUMNS}
    free = [c for c in columns if c in FREE_COLUMNS]
    if free:
        # Free columns get their natural width if everything fits, else an equal share;
        # what a short column leaves over goes to the longer ones.
        left = max(0, left)
        remaining = list(free)
        while remaining:
            share = left // len(remaining)
            short = [c for c in remaining if natural[c] <= share]
            if not short:
                for c in remaining:
                    widths[c] = max(1, share)
                break
            for c in short:
                widths[c] = natural[c]
                left -= natural[c]
                remaining.remove(c)
    return {c: widths[c] for c in columns}


def resource_table(rows: list[ResourceRow], selected: str | None, *, width: int) -> Table:
    """The table at the top of the screen, fitted to `width`; the selected row is marked."""
    table_rows = [_cells(row, row.name == selected) for row in rows]
    widths = _widths(table_rows, width)
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column, column_width in widths.items():
        table.add_column(column, width=column_width, no_wrap=True, overflow="ellipsis",
                         justify="right" if column == "ALERTS" else "left")
    for row, cells in zip(rows, table_rows, strict=True):
        table.add_row(*(cells[column] for column in widths),
                      style="on grey15" if row.name == selected else None)
    return table
