"""`ci` believes success only once every running thing has stayed up long enough."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from devloop.engine import ci
from devloop.engine.ci import wait_for_outcome
from devloop.engine.runner import RuntimeReport
from devloop.engine.scheduler import ResourceView, RuntimeState, UpdateState
from devloop.engine.store import Store


class Engine:
    """What `ci` reads of the engine: views, each runner's report, errors."""

    def __init__(self, reports: dict[str, RuntimeReport]) -> None:
        self.reports = reports
        self.store = Store()

    def views(self) -> list[ResourceView]:
        return [ResourceView(name, (), False, UpdateState.OK, report.state)
                for name, report in self.reports.items()]

    def runtime_of(self, name: str) -> RuntimeReport:
        return self.reports[name]

    def error_of(self, name: str) -> str:
        report = self.reports[name]
        return report.reason if report.state == RuntimeState.ERROR else ""


def ok(stable_at: float | None) -> RuntimeReport:
    return RuntimeReport(RuntimeState.OK, "ready", stable_at=stable_at)


def timed(engine: Any, settle: float = 3.0) -> tuple[Any, float]:
    async def run() -> tuple[Any, float]:
        started = time.monotonic()
        outcome = await wait_for_outcome(engine, timeout=20, settle=settle)
        return outcome, time.monotonic() - started
    return asyncio.run(run())


def test_success_waits_until_the_containers_are_stable_and_no_longer():
    engine = Engine({"api": ok(time.monotonic() + 0.4),
                     "check": RuntimeReport(RuntimeState.NOT_APPLICABLE)})
    outcome, took = timed(engine, settle=30.0)  # not used: the runner can tell
    assert outcome.ok
    assert 0.35 <= took < 5.0


def test_containers_stable_long_ago_succeed_at_once():
    outcome, took = timed(Engine({"api": ok(time.monotonic() - 10)}), settle=30.0)
    assert outcome.ok and took < 5.0


def test_a_runner_that_cannot_tell_is_believed_after_the_fixed_settle():
    outcome, took = timed(Engine({"serve": ok(None)}), settle=0.5)
    assert outcome.ok and took >= 0.5


def test_a_crash_before_the_containers_are_stable_fails_ci():
    engine = Engine({"api": ok(time.monotonic() + 30)})

    async def run() -> Any:
        async def crash() -> None:
            await asyncio.sleep(0.3)
            engine.reports["api"] = RuntimeReport(RuntimeState.ERROR,
                                                  "pod api-1: main: CrashLoopBackOff")
        task = asyncio.create_task(crash())
        outcome = await wait_for_outcome(engine, timeout=20, settle=0.0)
        await task
        return outcome

    outcome = asyncio.run(run())
    assert not outcome.ok
    assert outcome.failed_resource == "api"
    assert "CrashLoopBackOff" in outcome.message


def test_a_change_in_the_store_is_judged_at_once_not_at_the_next_poll(monkeypatch):
    monkeypatch.setattr(ci, "POLL_SECONDS", 5.0)
    engine = Engine({"api": ok(time.monotonic() + 30)})

    async def run() -> tuple[Any, float]:
        async def crash() -> None:
            await asyncio.sleep(0.3)
            engine.reports["api"] = RuntimeReport(RuntimeState.ERROR, "pod api-1: Error")
            engine.store.put("resource", "api", status={"runtimeStatus": "error"})
        task = asyncio.create_task(crash())
        started = time.monotonic()
        outcome = await wait_for_outcome(engine, timeout=20, settle=0.0)
        await task
        return outcome, time.monotonic() - started

    outcome, took = asyncio.run(run())
    assert not outcome.ok and outcome.failed_resource == "api"
    assert took < 2.0  # the fallback poll would take 5 s


@pytest.mark.parametrize("stable_in,settle", [(0.3, 30.0), (None, 0.3)])
def test_success_comes_when_the_last_trust_is_due_not_at_the_next_poll(monkeypatch, stable_in,
                                                                      settle):
    monkeypatch.setattr(ci, "POLL_SECONDS", 5.0)
    stable_at = None if stable_in is None else time.monotonic() + stable_in
    outcome, took = timed(Engine({"api": ok(stable_at)}), settle=settle)
    assert outcome.ok
    assert 0.25 <= took < 2.0
