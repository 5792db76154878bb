"""What a `devloop ci` run did, per resource: the one record every report is written from."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devloop.engine.logs import LogStore
from devloop.engine.store import Store

# Lines of a failing resource's log a report repeats: enough for a stack trace.
EXCERPT_LINES = 40


class Verdict(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    # Not finished when ci stopped at another resource's failure, or not part of the run
    # (disabled, auto_init=False).
    SKIPPED = "skipped"


@dataclass(frozen=True)
class BuildRecord:
    name: str
    start_time: float
    duration: float
    cause: str
    files: tuple[str, ...]
    error: str


@dataclass(frozen=True)
class ResourceResult:
    name: str
    type: str
    labels: tuple[str, ...]
    verdict: Verdict
    message: str
    update_status: str
    runtime_status: str
    runtime_reason: str
    # Seconds from the start of the run until the resource was first seen ready (None: never).
    ready_after: float | None
    builds: tuple[BuildRecord, ...]
    alerts: tuple[str, ...]
    log_excerpt: tuple[str, ...] = ()
    # Where the failure is in the user's files (a Tiltfile error), for annotations.
    file: str = ""
    line: int = 0

    @property
    def build_seconds(self) -> float:
        return sum(build.duration for build in self.builds)


@dataclass(frozen=True)
class RunReport:
    ok: bool
    failed_resource: str
    message: str
    started: float
    duration: float
    resources: tuple[ResourceResult, ...] = field(default_factory=tuple)


def _builds(store: Store, name: str) -> tuple[BuildRecord, ...]:
    records = []
    for obj in store.list("build"):
        if obj.spec.get("resource") != name:
            continue
        status = obj.status
        records.append(BuildRecord(
            name=obj.name, start_time=float(status.get("startTime", 0) or 0),
            duration=float(status.get("duration", 0) or 0), cause=str(obj.spec.get("cause", "")),
            files=tuple(str(f) for f in obj.spec.get("files", ())),
            error=str(status.get("error", "") or "")))
    return tuple(sorted(records, key=lambda b: b.start_time))


def _alerts(store: Store, name: str) -> tuple[str, ...]:
    return tuple(str(obj.status.get("message", "")) for obj in sorted(
        store.list("alert"), key=lambda o: o.name) if obj.spec.get("resource") == name)


def _verdict(name: str, status: Mapping[str, Any], *, ok: bool, failed_resource: str,
             message: str, waited: bool) -> tuple[Verdict, str]:
    if name == failed_resource:
        return Verdict.FAILED, message
    if status.get("enabled") is False or not waited:
        return Verdict.SKIPPED, "not part of the run (disabled or auto_init=False)"
    ready = status.get("updateStatus") == "ok" and status.get("runtimeStatus") in (
        "ok", "not_applicable")
    if ready:
        return Verdict.PASSED, ""
    if status.get("updateStatus") == "error" or status.get("runtimeStatus") == "error":
        return Verdict.FAILED, str(status.get("error") or status.get("runtimeReason") or "error")
    if not ok and message.startswith("timeout"):
        return Verdict.FAILED, f"not ready when the run timed out ({message})"
    return Verdict.SKIPPED, (f"not finished: the run stopped when {failed_resource!r} failed"
                             if failed_resource else "not finished")


def _ready_after(seen: float | None, status: Mapping[str, Any],
                 builds: Sequence[BuildRecord], started: float) -> float | None:
    """`seen` is when ci's poll (every 0.25 s) first saw the resource ready; a resource with
    no runtime (a local_resource's cmd) was ready when its last good build ended, exactly."""
    if seen is None or status.get("runtimeStatus") != "not_applicable":
        return seen
    ends = [b.start_time + b.duration - started for b in builds if not b.error]
    ended = [end for end in ends if 0 <= end <= seen]
    return round(max(ended), 3) if ended else seen


def collect(store: Store, logs: LogStore, *, ok: bool, failed_resource: str, message: str,
            started: float, finished: float, ready_after: Mapping[str, float],
            names: Sequence[str] | None = None) -> RunReport:
    """The run's record from the store's resource, build and alert objects and the kept logs.
    A resource counts as waited for once it has an update (auto_init=False ones have none)."""
    results = []
    order = list(names) if names is not None else [o.name for o in store.list("resource")]
    for name in order:
        obj = store.get("resource", name)
        spec = obj.spec if obj else {}
        status = obj.status if obj else {}
        builds = _builds(store, name)
        waited = bool(builds) or status.get("updateStatus") not in (None, "", "none")
        verdict, why = _verdict(name, status, ok=ok, failed_resource=failed_resource,
                                message=message, waited=waited)
        results.append(ResourceResult(
            name=name, type=str(spec.get("type", "")),
            labels=tuple(str(label) for label in spec.get("labels", ())), verdict=verdict,
            message=why, update_status=str(status.get("updateStatus", "none")),
            runtime_status=str(status.get("runtimeStatus", "unknown")),
            runtime_reason=str(status.get("runtimeReason", "") or ""),
            ready_after=_ready_after(ready_after.get(name), status, builds, started),
            builds=builds, alerts=_alerts(store, name),
            log_excerpt=tuple(logs.tail(name, EXCERPT_LINES))
            if verdict == Verdict.FAILED else ()))
    return RunReport(ok=ok, failed_resource=failed_resource, message=message, started=started,
                     duration=max(0.0, finished - started), resources=tuple(results))
