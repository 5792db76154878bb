"""Writes the reports a `devloop ci` run was asked for, at its end."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.reports.github import workflow_annotations
from devloop.reports.json_report import render_json
from devloop.reports.junit import render_junit
from devloop.reports.model import ResourceResult, RunReport, Verdict, collect


def _write(path: str, data: bytes, what: str) -> None:
    """A report that cannot be written is said on stderr; the run's verdict still stands."""
    try:
        _replace(path, data)
    except OSError as exc:
        print(f"devloop: cannot write the {what} to {path}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)


def _replace(path: str, data: bytes) -> None:
    target = Path(path)
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    # Written whole then renamed: a CI step reading it never sees half a report.
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, target)


def write_ci_reports(*, store: Store, logs: LogStore, ok: bool, failed_resource: str,
                     message: str, started: float, finished: float,
                     ready_after: Mapping[str, float], names: Sequence[str],
                     junit_xml: str = "", report_json: str = "",
                     environ: Mapping[str, str] = os.environ,
                     out: TextIO = sys.stdout) -> None:
    """JUnit XML to `junit_xml`, JSON to `report_json` (each when given), and the failures as
    workflow error annotations on `out` when running in GitHub Actions."""
    if not (junit_xml or report_json or environ.get("GITHUB_ACTIONS") == "true"):
        return
    report = collect(store, logs, ok=ok, failed_resource=failed_resource, message=message,
                     started=started, finished=finished, ready_after=ready_after, names=names)
    _emit(report, junit_xml=junit_xml, report_json=report_json, environ=environ, out=out)


def write_setup_failure_reports(*, what: str, message: str, detail: str, started: float,
                                finished: float, file: str = "", line: int = 0,
                                junit_xml: str = "", report_json: str = "",
                                environ: Mapping[str, str] = os.environ,
                                out: TextIO = sys.stdout) -> None:
    """The reports of a run that failed before any resource ran (the Tiltfile did not
    evaluate, the cluster is not allowed): one failed test case named `what`, so a CI system
    that expects a report still gets one and shows why."""
    if not (junit_xml or report_json or environ.get("GITHUB_ACTIONS") == "true"):
        return
    result = ResourceResult(
        name=what, type="setup", labels=(), verdict=Verdict.FAILED, message=message,
        update_status="error", runtime_status="not_applicable", runtime_reason="",
        ready_after=None, builds=(), alerts=(), log_excerpt=tuple(detail.splitlines()),
        file=file, line=line)
    report = RunReport(ok=False, failed_resource=what, message=message, started=started,
                       duration=max(0.0, finished - started), resources=(result,))
    _emit(report, junit_xml=junit_xml, report_json=report_json, environ=environ, out=out)


def _emit(report: RunReport, *, junit_xml: str, report_json: str,
          environ: Mapping[str, str], out: TextIO) -> None:
    if junit_xml:
        _write(junit_xml, render_junit(report), "JUnit XML report")
    if report_json:
        _write(report_json, render_json(report).encode(), "JSON report")
    if environ.get("GITHUB_ACTIONS") == "true":
        for line in workflow_annotations(report):
            print(line, file=out, flush=True)
