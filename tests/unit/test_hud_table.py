"""The terminal UI's resource table and frame, built from store snapshots."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.hud.screen import View, render, tail_that_fits
from devloop.hud.table import ResourceRow, overall, resource_rows, resource_table


def _resource(store: Store, name: str, **status: object) -> None:
    base: dict[str, object] = {"updateStatus": "ok", "runtimeStatus": "ok", "builds": 1,
                               "enabled": True, "waiting": "", "pendingChanges": []}
    base.update(status)
    store.put("resource", name, spec={"type": "k8s", "links": []}, status=base)


def _text(renderable: object, width: int = 120, height: int = 40) -> str:
    console = Console(width=width, height=height, file=io.StringIO(), record=True,
                      force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_rows_count_alerts_and_show_port_forward_urls_of_their_resource():
    store = Store()
    _resource(store, "api")
    _resource(store, "web")
    store.put("alert", "api-runtime-0", spec={"resource": "api"}, status={"message": "x"})
    store.put("alert", "api-update", spec={"resource": "api"}, status={"message": "y"})
    store.put("portforward", "api-8080", spec={"resource": "api"},
              status={"url": "http://localhost:8080/"})
    rows = {row.name: row for row in resource_rows(store)}
    assert rows["api"].alerts == 2 and rows["web"].alerts == 0
    assert rows["api"].endpoints == ("http://localhost:8080/",)
    assert rows["web"].endpoints == ()


def test_a_running_update_shows_the_duration_of_the_previous_build():
    store = Store()
    _resource(store, "api", updateStatus="in_progress", builds=2)
    store.put("build", "api-1", spec={"resource": "api"},
              status={"startTime": 100.0, "duration": 3.25, "error": ""})
    [row] = resource_rows(store)
    assert row.builds == 2 and row.last_duration == 3.25 and row.last_finished == 103.25


@pytest.mark.parametrize(("row", "expected"), [
    (ResourceRow("a", "k8s", "ok", "ok"), "ready"),
    (ResourceRow("a", "local", "ok", "not_applicable"), "ready"),
    (ResourceRow("a", "k8s", "ok", "pending"), "pending"),
    (ResourceRow("a", "k8s", "pending", "unknown"), "pending"),
    (ResourceRow("a", "k8s", "in_progress", "ok"), "building"),
    (ResourceRow("a", "k8s", "error", "ok"), "error"),
    (ResourceRow("a", "k8s", "ok", "error"), "error"),
    (ResourceRow("a", "k8s", "error", "ok", enabled=False), "disabled"),
    (ResourceRow("a", "local", "none", "not_applicable"), "idle"),
])
def test_each_row_has_one_overall_status(row, expected):
    assert overall(row) == expected


def test_table_marks_the_selected_row_and_shows_statuses_and_reasons():
    store = Store()
    _resource(store, "api")
    _resource(store, "worker", runtimeStatus="error", runtimeReason="CrashLoopBackOff")
    text = _text(resource_table(resource_rows(store), "worker", width=120))
    lines = {line.split()[1] if line.startswith("▸") else line.split()[0]: line
             for line in text.splitlines()[2:] if line.strip()}
    assert lines["worker"].startswith("▸ worker")
    assert "CrashLoopBackOff" in lines["worker"] and "error" in lines["worker"]
    assert not lines["api"].startswith("▸") and "ready" in lines["api"]


@pytest.mark.parametrize("width", [50, 80, 120, 200])
def test_table_never_wraps_or_overflows_the_terminal_width(width):
    store = Store()
    _resource(store, "a-rather-long-resource-name", runtimeStatus="pending",
              runtimeReason="waiting for pod a-rather-long-resource-name-7c9d5b-xkq2p",
              waiting="waiting on dependency database-migrations")
    store.put("portforward", "x", spec={"resource": "a-rather-long-resource-name"},
              status={"url": "http://127.0.0.1:18081/some/long/path"})
    text = _text(resource_table(resource_rows(store), None, width=width), width=width)
    lines = text.rstrip("\n").splitlines()
    assert len(lines) == 3  # header, rule, one row
    assert all(len(line) <= width for line in lines)


def test_log_tail_keeps_the_newest_lines_that_fit_once_wrapped():
    logs = LogStore()
    for index in range(10):
        logs.append("api", f"line {index}")
    logs.append("api", "x" * 25)  # wraps to 3 rows at width 10
    console = Console(width=10, file=io.StringIO())
    shown = tail_that_fits(logs.lines(), rows=5, width=10, with_resource=False,
                           console=console)
    assert [text.plain for text in shown] == ["line 8", "line 9", "x" * 10, "x" * 10, "x" * 5]


def test_log_tail_drops_terminal_control_sequences_but_keeps_text():
    logs = LogStore()
    logs.append("api", "\x1b[2J\x1b[31mred\x1b[0m plain")
    console = Console(width=40, file=io.StringIO())
    [shown] = tail_that_fits(logs.lines(), rows=3, width=40, with_resource=True,
                             console=console)
    assert shown.plain.endswith("api │ red plain")


@pytest.mark.parametrize("height", [10, 24, 50])
def test_frame_is_exactly_the_terminal_height(height):
    store, logs = Store(), LogStore()
    for index in range(30):
        _resource(store, f"svc-{index}")
        logs.append(f"svc-{index}", f"hello {index}")
    console = Console(width=100, height=height, file=io.StringIO())
    frame = render(resource_rows(store), logs.lines(), View("svc-29", True, "http://x/"),
                   width=100, height=height, console=console)
    text = _text(frame, width=100, height=height)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == height
    assert "svc-29" in text  # the selected row stays in view when the table is cut
    assert lines[-1].startswith("↑↓/jk select")


def test_frame_title_names_the_selected_resource_and_dropped_lines():
    store, logs = Store(), LogStore()
    _resource(store, "api")
    logs.append("api", "only api")
    console = Console(width=100, height=20, file=io.StringIO())
    frame = render(resource_rows(store), logs.lines("api"), View("api", False, ""),
                   width=100, height=20, dropped=7, console=console)
    text = _text(frame, width=100, height=20)
    assert "logs of api · 7 older lines dropped" in text
    assert "\nonly api" in text
