"""Plain prefixed log lines and the `devloop ci` summary."""

from __future__ import annotations

import io
from dataclasses import dataclass

from devloop.engine.ci import CiOutcome
from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.hud.plain import PlainPrinter, ci_summary


@dataclass(frozen=True)
class _View:
    name: str


def test_lines_are_prefixed_with_the_resource_and_pod():
    out = io.StringIO()
    logs = LogStore()
    PlainPrinter(out).attach(logs)
    logs.append("api", "listening on :8080", prefix="api-7c9d")
    logs.append("migrate", "done", source="local")
    assert out.getvalue().splitlines() == [
        "           api │ [api-7c9d] listening on :8080",
        "       migrate │ done",
    ]


def test_attaching_late_prints_the_lines_kept_so_far_first_in_order():
    out = io.StringIO()
    logs = LogStore()
    logs.append("(Tiltfile)", "loading", source="tiltfile")
    logs.append("api", "built")
    PlainPrinter(out).attach(logs)
    logs.append("api", "serving")
    assert [line.split("│ ")[1] for line in out.getvalue().splitlines()] == [
        "loading", "built", "serving"]


def _store_with_two_resources() -> Store:
    store = Store()
    store.put("resource", "api", status={"updateStatus": "ok", "runtimeStatus": "ok",
                                          "builds": 2, "enabled": True})
    store.put("build", "api-2", status={"startTime": 0.0, "duration": 4.25})
    store.put("resource", "worker", status={"updateStatus": "ok", "runtimeStatus": "error",
                                             "runtimeReason": "CrashLoopBackOff", "builds": 1,
                                             "enabled": True})
    return store


def test_ci_summary_lists_each_resource_and_says_success():
    text = ci_summary([_View("api")], _store_with_two_resources(), LogStore(),
                      CiOutcome(True))
    lines = text.splitlines()
    assert lines[0].split() == ["RESOURCE", "UPDATE", "RUNTIME", "BUILDS", "LAST", "DURATION"]
    assert any(line.split() == ["api", "ok", "ok", "2", "4.2s"] for line in lines)
    assert lines[-1] == "SUCCESS. All workloads are healthy."
    assert "\x1b" not in text


def test_ci_summary_on_error_names_the_resource_and_repeats_its_log():
    logs = LogStore()
    logs.append("worker", "about to crash: config missing", prefix="worker-1")
    text = ci_summary([_View("api"), _View("worker")], _store_with_two_resources(), logs,
                      CiOutcome(False, "worker", "CrashLoopBackOff"))
    assert "worker  " in text and "error (CrashLoopBackOff)" in text
    assert "ERROR: resource 'worker': CrashLoopBackOff" in text
    assert "  worker-1 about to crash: config missing" in text
