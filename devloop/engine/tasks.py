"""Background tasks of the engine: `spawn` and `cancel_and_wait` (from
`devloop.model.background`, where every layer finds them), and the reporters that turn a
task's failure into its resource's log lines and a `task-failed` alert.

`spawn` starts a task with a name and keeps a reference to it until it ends. When the task
ends with an exception, the exception and its traceback go to the task's `on_error`
reporter, which `report_to` makes for a resource: its log gets the traceback, and an alert
(type `task-failed`) says which task of which resource failed. Without a reporter they go to
Python's log (stderr), so nothing fails silently; only a task whose starter awaits it and
handles its exception itself (`handled=True`) is not reported. A cancelled task is not an
error. `cancel_and_wait` stops tasks we started.
"""

from __future__ import annotations

from collections.abc import Callable

from devloop.engine.alerts import Alert, AlertType, Evidence, Publish, raise_alert
from devloop.engine.runner import RunnerHooks
from devloop.model.background import (
    CANCEL_AGAIN_SECONDS,
    Reporter,
    TaskFailure,
    cancel_and_wait,
    spawn,
)

__all__ = ["CANCEL_AGAIN_SECONDS", "Reporter", "TaskFailure", "cancel_and_wait", "report_to",
           "resource_reporter", "spawn"]


def report_to(log_line: Callable[[str], None], publish: Publish | None) -> Reporter:
    """A reporter writing the traceback with `log_line` (the resource's log) and raising a
    `task-failed` alert through `publish` (None: the log only)."""

    def report(failure: TaskFailure) -> None:
        text = failure.traceback()
        log_line(f"ERROR: background task {failure.task} failed: {failure.error!r}")
        for line in text.splitlines():
            log_line(line)
        if publish is not None:
            raise_alert(publish, Alert(
                AlertType.TASK_FAILED, failure.resource,
                f"background task {failure.task} failed: {failure.error!r}",
                key=failure.task.replace(":", "-"),
                evidence=Evidence(log=tuple(text.splitlines()[-20:]))))

    return report


def resource_reporter(hooks: RunnerHooks, resource: str) -> Reporter:
    """A runner's reporter: the resource's log and an alert through its hooks."""
    return report_to(lambda text: hooks.log(resource, text, "runtime", ""), hooks.publish)
