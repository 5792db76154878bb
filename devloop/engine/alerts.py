"""Alerts: problems a person should look at, each an `alert` object with a stable id.

An alert has a type (what kind of problem), the resource it is about, a key telling apart
alerts of one type and resource (a port, a task; a digest of the message for a runtime
problem), a message, the time it was raised and its evidence (the resource's last log lines,
the Kubernetes event). Its id, `<resource>-<type>[-<key>]` (`<type>[-<key>]` for the
session's own: the Tiltfile, file watching, the cluster), stays the same while the problem
lasts: other alerts coming and going never rename it. Raising it again with the same
message keeps its time and evidence.

Anything that can write objects raises alerts: runners through `RunnerHooks.publish`,
the engine and the reloader through the store (`publisher_of`). Adding an alert type: its
member in `AlertType`, then `raise_alert`/`clear_alert` where the problem is seen.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

ALERT_KIND = "alert"
# How many of the resource's last log lines an alert keeps as its evidence.
EVIDENCE_LINES = 20

# publish(kind, name, spec, status), as `RunnerHooks.publish`
Publish = Callable[[str, str, dict[str, object], dict[str, object]], object]
Delete = Callable[[str, str], None]


class AlertType(enum.StrEnum):
    UPDATE = "update"  # the last update (build, deploy, cmd, live update) failed
    RUNTIME = "runtime"  # what runs is failing: a crash loop, a pull error, a warning event
    PORT_FORWARD = "portforward"  # a port-forward has not connected for a while
    TASK_FAILED = "task-failed"  # a background task ended with an exception (a bug)
    RESYNC = "resync"  # a restarted container has not got the live-updated files back yet
    TILTFILE = "tiltfile"  # the Tiltfile does not load: the last good state keeps running
    FILE_WATCH = "file-watch"  # files cannot be watched (the OS's inotify limits)
    CLUSTER = "cluster"  # a part of the cluster or image pipeline does not answer

    @property
    def session_wide(self) -> bool:
        """About the session, not one resource: its id does not name a resource."""
        return self in (AlertType.TILTFILE, AlertType.FILE_WATCH, AlertType.CLUSTER)


@dataclass(frozen=True)
class Evidence:
    """Why the alert was raised: log lines and/or the event that showed the problem."""

    log: tuple[str, ...] = ()
    event: dict[str, object] | None = None

    def as_status(self) -> dict[str, object]:
        out: dict[str, object] = {"log": list(self.log)}
        if self.event is not None:
            out["event"] = dict(self.event)
        return out


@dataclass(frozen=True)
class Alert:
    type: AlertType
    resource: str
    message: str
    key: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    time: float = 0.0  # when raised (epoch seconds); 0: now

    @property
    def id(self) -> str:
        return alert_id(self.type, self.resource, self.key)


def alert_id(type_: AlertType, resource: str, key: str = "") -> str:
    base = type_.value if type_.session_wide else f"{resource}-{type_.value}"
    return base + (f"-{key}" if key else "")


def message_key(message: str) -> str:
    """A key for an alert told apart only by its message (a runner's runtime alerts):
    the same message keeps its id, and others never shift it."""
    return hashlib.sha1(message.encode(), usedforsecurity=False).hexdigest()[:10]


class _Readable(Protocol):
    def get(self, kind: str, name: str) -> Any: ...


def is_raised(current: _Readable, type_: AlertType, resource: str, key: str,
              message: str) -> bool:
    """The alert is in `current` (the store) with this message."""
    existing = current.get(ALERT_KIND, alert_id(type_, resource, key))
    return existing is not None and existing.status.get("message") == message


def raise_alert(publish: Publish, alert: Alert, *, current: _Readable | None = None) -> None:
    """Publish `alert`. With `current` (the store), an alert already raised with the same
    message keeps its time and evidence (and nothing is written)."""
    if current is not None and is_raised(current, alert.type, alert.resource, alert.key,
                                         alert.message):
        return
    publish(ALERT_KIND, alert.id, {
        "resource": alert.resource, "type": alert.type.value, "key": alert.key}, {
        "message": alert.message, "time": alert.time or time.time(),
        "evidence": alert.evidence.as_status()})


def clear_alert(delete: Delete, type_: AlertType, resource: str, key: str = "",
                *, current: _Readable | None = None) -> None:
    """Take back the alert, if raised (with `current`, only then is anything written)."""
    name = alert_id(type_, resource, key)
    if current is None or current.get(ALERT_KIND, name) is not None:
        delete(ALERT_KIND, name)


class _Putting(Protocol):
    def put(self, kind: str, name: str, *, spec: dict[str, Any] | None = None,
            status: dict[str, Any] | None = None) -> object: ...


def publisher_of(store: _Putting) -> Publish:
    """`publish` for a `Store`."""

    def publish(kind: str, name: str, spec: dict[str, object],
                status: dict[str, object]) -> object:
        return store.put(kind, name, spec=spec, status=status)

    return publish
