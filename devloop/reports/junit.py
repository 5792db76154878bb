"""JUnit XML for a ci run: one test case per resource, in the Ant/Jenkins JUnit format that
CI systems (Jenkins, GitLab, GitHub test reporters) read."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from devloop.reports.model import ResourceResult, RunReport, Verdict

SUITE_NAME = "devloop ci"
# XML 1.0 cannot carry most control characters, not even escaped; logs do contain them
# (colour codes, carriage returns of progress bars).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def xml_text(text: str) -> str:
    """`text` without terminal colour codes and characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def case_seconds(result: ResourceResult, run_seconds: float) -> float:
    """Time to ready when it got there; for a failure, until the run stopped; else the time
    spent building."""
    if result.ready_after is not None:
        return result.ready_after
    if result.verdict == Verdict.FAILED:
        return run_seconds
    return result.build_seconds


def _seconds(value: float) -> str:
    return f"{max(0.0, value):.3f}"


def _case(result: ResourceResult, run_seconds: float) -> ET.Element:
    case = ET.Element("testcase", {
        "name": result.name,
        "classname": f"devloop.{result.type or 'resource'}",
        "time": _seconds(case_seconds(result, run_seconds))})
    if result.verdict == Verdict.FAILED:
        failure = ET.SubElement(case, "failure", {
            "message": xml_text(result.message),
            "type": "runtime" if result.update_status == "ok" else "update"})
        failure.text = xml_text("\n".join([result.message, "", *result.log_excerpt]))
    elif result.verdict == Verdict.SKIPPED:
        ET.SubElement(case, "skipped", {"message": xml_text(result.message)})
    lines = [f"update: {result.update_status}",
             f"runtime: {result.runtime_status}"
             + (f" ({result.runtime_reason})" if result.runtime_reason else "")]
    lines += [f"build {b.name}: {b.duration:.1f}s ({b.cause or 'initial'})"
              + (f" error: {b.error}" if b.error else "") for b in result.builds]
    lines += [f"alert: {alert}" for alert in result.alerts]
    ET.SubElement(case, "system-out").text = xml_text("\n".join(lines))
    return case


def render_junit(report: RunReport, *, hostname: str | None = None) -> bytes:
    """The report as a JUnit XML document (UTF-8, with its declaration)."""
    results = report.resources
    failures = sum(r.verdict == Verdict.FAILED for r in results)
    skipped = sum(r.verdict == Verdict.SKIPPED for r in results)
    counts = {"tests": str(len(results)), "failures": str(failures), "errors": "0",
              "skipped": str(skipped)}
    root = ET.Element("testsuites", {"name": SUITE_NAME, **{k: counts[k] for k in (
        "tests", "failures", "errors")}, "time": _seconds(report.duration)})
    suite = ET.SubElement(root, "testsuite", {
        "name": SUITE_NAME, **counts, "time": _seconds(report.duration),
        "timestamp": datetime.fromtimestamp(report.started, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "hostname": hostname if hostname is not None else socket.gethostname() or "localhost",
        "id": "0", "package": "devloop"})
    ET.SubElement(suite, "properties")
    for result in results:
        suite.append(_case(result, report.duration))
    if not report.ok:
        ET.SubElement(suite, "system-err").text = xml_text(
            f"ERROR: resource {report.failed_resource!r}: {report.message}")
    ET.indent(root)
    text: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return text + b"\n"
