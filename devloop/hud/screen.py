"""One frame of the terminal UI: header, resource table, log tail and key help, sized to fit.

Pure: the caller passes the rows, the log lines and the terminal size; the frame is exactly
`height` lines tall, so the live display never scrolls.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.rule import Rule
from rich.text import Text

from devloop.engine.logs import LogLine
from devloop.hud.plain import PREFIX_WIDTH
from devloop.hud.table import ResourceRow, overall, resource_table, status_style

KEY_HELP = ("↑↓/jk select · enter/l selected⇄all logs · t/r trigger · e enable/disable · "
            "b browser · q quit")

# Colours for resource prefixes in the combined log, picked by a stable hash of the name so a
# resource keeps its colour across redraws and runs.
PREFIX_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan",
                  "bright_magenta", "bright_green", "bright_blue")


@dataclass(frozen=True)
class View:
    """What the user chose to look at."""

    selected: str | None
    show_all: bool
    dashboard_url: str
    flash: str = ""


def prefix_colour(resource: str) -> str:
    return PREFIX_COLOURS[zlib.crc32(resource.encode()) % len(PREFIX_COLOURS)]


def log_text(line: LogLine, *, with_resource: bool) -> Text:
    """One log line for the screen; colour codes a program printed are kept, other terminal
    control sequences are dropped (they would move our cursor)."""
    text = Text(no_wrap=False, overflow="fold")
    if with_resource:
        text.append(f"{line.resource:>{PREFIX_WIDTH}} │ ", style=prefix_colour(line.resource))
    if line.prefix:
        text.append(f"[{line.prefix}] ", style="dim")
    body = Text.from_ansi(line.text.expandtabs(8))
    if line.source == "build" and not body.spans:
        body.stylize("bright_black" if not line.text.startswith("ERROR") else "red")
    text.append_text(body)
    return text


def tail_that_fits(lines: Sequence[LogLine], *, rows: int, width: int, with_resource: bool,
                   console: Console) -> list[Text]:
    """The newest lines that fill `rows` screen rows once wrapped to `width`; the oldest
    shown line is cut from the top if it only partly fits."""
    shown: list[Text] = []
    used = 0
    for line in reversed(lines):
        if used >= rows:
            break
        wrapped = log_text(line, with_resource=with_resource).wrap(console, width)
        room = rows - used
        parts = list(wrapped)[-room:]
        shown.extend(reversed(parts))
        used += len(parts)
    shown.reverse()
    return shown


def _summary(rows: Sequence[ResourceRow]) -> Text:
    counts: dict[str, int] = {}
    for row in rows:
        state = overall(row)
        counts[state] = counts.get(state, 0) + 1
    text = Text()
    for state in ("ready", "building", "pending", "error", "disabled", "idle"):
        if counts.get(state):
            text.append(f"  {counts[state]} {state}", style=status_style(state))
    return text


def _window(rows: Sequence[ResourceRow], selected: str | None, limit: int,
            ) -> tuple[list[ResourceRow], int]:
    """At most `limit` rows, keeping the selected one in view. Returns rows and how many
    were left out."""
    if len(rows) <= limit:
        return list(rows), 0
    names = [row.name for row in rows]
    index = names.index(selected) if selected in names else 0
    start = min(max(0, index - limit // 2), len(rows) - limit)
    return list(rows[start:start + limit]), len(rows) - limit


def render(rows: Sequence[ResourceRow], lines: Sequence[LogLine], view: View, *,
           width: int, height: int, dropped: int = 0, console: Console) -> RenderableType:
    """The whole frame: `height` lines of `width` columns."""
    header = Text("devloop", style="bold")
    if view.dashboard_url:
        header.append("  dashboard ", style="dim").append(view.dashboard_url, style="cyan")
    header.append_text(_summary(rows))
    header.no_wrap, header.overflow = True, "ellipsis"

    # The table gets at most half the screen; logs the rest. Header and separator lines of
    # the table take 2 rows, the frame's own header, rule and footer 3 more.
    table_limit = max(1, (height - 5) // 2)
    shown_rows, hidden = _window(rows, view.selected, table_limit)
    table = resource_table(shown_rows, view.selected, width=width)
    table_height = len(console.render_lines(table, console.options.update_width(width),
                                            pad=False))
    title = (f"logs of {view.selected}" if not view.show_all and view.selected
             else "logs of all resources")
    if dropped:
        title += f" · {dropped} older lines dropped"
    if hidden:
        title += f" · {hidden} resources not shown in the table"
    rule = Rule(Text(title, style="bold"), align="left", style="dim")

    footer = Text(KEY_HELP, style="dim", no_wrap=True, overflow="ellipsis")
    if view.flash:
        footer = Text(view.flash, style="bold cyan", no_wrap=True, overflow="ellipsis")
        footer.append("   " + KEY_HELP, style="dim")

    log_rows = max(0, height - 3 - table_height)
    tail = tail_that_fits(lines, rows=log_rows, width=width, with_resource=view.show_all,
                          console=console)
    padding = [Text("")] * (log_rows - len(tail))
    return Group(header, table, rule, *tail, *padding, footer)
