"""Background tasks: a failure is logged, reported to the resource and alerted; a
cancellation is not a failure."""

from __future__ import annotations

import asyncio
import logging

import pytest

from devloop.engine import tasks
from devloop.engine.alerts import ALERT_KIND, publisher_of
from devloop.engine.runner import RunnerHooks
from devloop.engine.store import Store
from devloop.model import background


async def _fail() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("the stream broke")


async def test_a_task_that_fails_writes_its_traceback_to_the_resource_log_and_an_alert():
    store = Store()
    lines: list[tuple[str, str]] = []
    hooks = RunnerHooks(log=lambda resource, text, source, prefix: lines.append((resource,
                                                                                 text)),
                        changed=lambda: None, publish=publisher_of(store))
    task = tasks.spawn(_fail(), name="logs:web:pod:main", resource="web",
                       on_error=tasks.resource_reporter(hooks, "web"))
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)  # done callbacks run on the next turn
    assert lines[0] == ("web", "ERROR: background task logs:web:pod:main failed: "
                               "RuntimeError('the stream broke')")
    assert any("RuntimeError: the stream broke" in text for _, text in lines)
    alert = store.get(ALERT_KIND, "web-task-failed-logs-web-pod-main")
    assert alert is not None
    assert alert.spec == {"resource": "web", "type": "task-failed", "key": "logs-web-pod-main"}
    assert "the stream broke" in alert.status["message"]
    assert any("_fail" in line for line in alert.status["evidence"]["log"])


async def test_a_task_without_a_reporter_fails_into_python_s_log(caplog):
    with caplog.at_level(logging.ERROR, logger="devloop.engine.tasks"):
        task = tasks.spawn(_fail(), name="monitor:web", resource="web")
        await asyncio.wait([task])
        await asyncio.sleep(0)
    assert "task monitor:web of web failed" in caplog.text
    assert "RuntimeError: the stream broke" in caplog.text


async def test_a_task_whose_starter_handles_its_exception_is_not_reported(caplog):
    reported: list[tasks.TaskFailure] = []
    with caplog.at_level(logging.ERROR, logger="devloop.engine.tasks"):
        task = tasks.spawn(_fail(), name="evaluate", on_error=reported.append, handled=True)
        await asyncio.wait([task])
        await asyncio.sleep(0)
    assert isinstance(task.exception(), RuntimeError)
    assert reported == [] and caplog.text == ""


async def test_a_cancelled_task_is_not_reported():
    reported: list[tasks.TaskFailure] = []
    task = tasks.spawn(asyncio.Event().wait(), name="waits", on_error=reported.append)
    await asyncio.sleep(0)
    await tasks.cancel_and_wait(task, None)
    await asyncio.sleep(0)
    assert task.cancelled()
    assert reported == []


async def test_a_failing_reporter_does_not_hide_the_failure(caplog):
    def broken(failure: tasks.TaskFailure) -> None:
        raise ValueError("reporter bug")

    task = tasks.spawn(_fail(), name="t", on_error=broken)
    with caplog.at_level(logging.ERROR, logger="devloop.engine.tasks"):
        await asyncio.wait([task])
        await asyncio.sleep(0)
    assert "reporting the failure of task t failed" in caplog.text


async def test_a_spawned_task_is_held_until_it_ends():
    done = asyncio.Event()
    task = tasks.spawn(done.wait(), name="held")
    assert task in background._running
    done.set()
    await task
    await asyncio.sleep(0)
    assert task not in background._running


async def test_cancel_and_wait_stops_a_task_that_swallowed_its_cancellation():
    # What Python 3.11's wait_for does when the cancellation and the awaited result meet:
    # the task goes on. cancel_and_wait cancels again until the task has ended.
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = tasks.spawn(stubborn(), name="stubborn")
    await asyncio.sleep(0)
    await asyncio.wait_for(tasks.cancel_and_wait(task), 5)
    assert task.cancelled() and swallowed == 1
