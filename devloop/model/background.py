"""The one way to start a background task, in every layer: named, owned, and never failing
silently.

`spawn` starts a task with a name and keeps a reference to it until it ends (asyncio keeps
only weak ones: a task nobody holds may be collected mid-flight). When the task ends with
an exception, the exception and its traceback go to the task's `on_error` reporter (the
engine's `tasks.report_to` makes one that writes a resource's log and raises an alert).
Without a reporter they go to Python's log (stderr), so nothing fails silently; only a task
whose starter awaits it and handles its exception itself (`handled=True`) is not reported.
A cancelled task is not an error. `cancel_and_wait` stops tasks we started.

This module is the only one that calls `asyncio.create_task`; it imports nothing else of
devloop, so every layer may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class TaskFailure:
    task: str  # the task's name
    resource: str  # whose task it was ("" for the session's own)
    error: BaseException

    def traceback(self) -> str:
        return "".join(traceback.format_exception(self.error)).rstrip()


Reporter = Callable[[TaskFailure], None]

_running: set[asyncio.Task[Any]] = set()

CANCEL_AGAIN_SECONDS = 0.5


def spawn(coroutine: Coroutine[Any, Any, T], *, name: str, resource: str = "",
          on_error: Reporter | None = None, handled: bool = False) -> asyncio.Task[T]:
    """Start `coroutine` as a task named `name` (of `resource`); an exception it ends with
    goes to `on_error`, else to Python's log, unless `handled` by whoever awaits it."""
    task = asyncio.create_task(coroutine, name=name)
    _running.add(task)
    task.add_done_callback(lambda done: _finished(done, resource, on_error, handled))
    return task


def _finished(task: asyncio.Task[Any], resource: str, on_error: Reporter | None,
              handled: bool) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is None or handled:
        return
    failure = TaskFailure(task.get_name(), resource, error)
    if on_error is None:
        log.error("task %s%s failed", failure.task, f" of {resource}" if resource else "",
                  exc_info=error)
        return
    try:
        on_error(failure)
    except Exception:  # the reporter must not hide the failure it reports
        log.exception("reporting the failure of task %s failed", failure.task)


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel the tasks (None: skipped) and wait for them to end. How they end is theirs
    to report (see `spawn`): here it is neither raised nor reported again."""
    started = [task for task in tasks if task is not None]
    for task in started:
        task.cancel()
    for task in started:
        # In Python 3.11 `asyncio.wait_for` drops a cancellation that arrives as the awaited
        # future completes, and the task runs on (a probe loop, forever): cancel again
        # until it has ended.
        while not task.done():
            await asyncio.wait({task}, timeout=CANCEL_AGAIN_SECONDS)
            if not task.done():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
