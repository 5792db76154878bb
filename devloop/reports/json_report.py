"""The ci run as JSON: per-resource timings, builds and alerts, for scripts and dashboards."""

from __future__ import annotations

import json
from typing import Any

from devloop.reports.model import RunReport

FORMAT_VERSION = 1


def report_data(report: RunReport) -> dict[str, Any]:
    return {
        "version": FORMAT_VERSION,
        "result": "success" if report.ok else "failure",
        "failedResource": report.failed_resource,
        "message": report.message,
        "startTime": report.started,
        "duration": round(report.duration, 3),
        "resources": [{
            "name": r.name, "type": r.type, "labels": list(r.labels),
            "result": r.verdict.value, "message": r.message,
            "updateStatus": r.update_status, "runtimeStatus": r.runtime_status,
            "runtimeReason": r.runtime_reason,
            "readyAfter": None if r.ready_after is None else round(r.ready_after, 3),
            "buildSeconds": round(r.build_seconds, 3),
            "builds": [{"name": b.name, "startTime": b.start_time, "duration": b.duration,
                        "cause": b.cause, "files": list(b.files), "error": b.error}
                       for b in r.builds],
            "alerts": list(r.alerts),
            "logExcerpt": list(r.log_excerpt),
        } for r in report.resources],
    }


def render_json(report: RunReport) -> str:
    return json.dumps(report_data(report), indent=2) + "\n"
