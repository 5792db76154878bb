"""A change stays among the resource's pending changes until an update applies it: while
its update runs (a push waiting for the registry, an update waiting for the cluster) and
after it failed, until the next update succeeds."""

from __future__ import annotations

import asyncio

from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.runner import RuntimeReport, UpdateError
from devloop.engine.store import Store
from devloop.model import plan as p


class Runner:
    """Each update waits for `go`, then fails while `failing`."""

    name = "app"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.failing = True
        self.updates: list[tuple[str, ...]] = []

    async def update(self, changed_files: tuple[str, ...]) -> None:
        self.updates.append(changed_files)
        await self.go.wait()
        self.go.clear()
        if self.failing:
            raise UpdateError("push: the registry localhost:5000 is unreachable")

    def runtime(self) -> RuntimeReport:
        return RuntimeReport()

    async def stop(self) -> None:
        return None


async def test_a_change_is_pending_while_its_update_runs_and_after_it_failed():
    runner = Runner()
    store = Store()
    plan = p.Plan("/p/Tiltfile", (p.Resource("app", p.ResourceType.LOCAL, auto_init=False),))
    engine = Engine(plan, store=store, logs=LogStore(), runner_factory=lambda r, pl: runner)
    task = asyncio.create_task(engine.run())

    def pending() -> list[str]:
        return list(store.get("resource", "app").status["pendingChanges"])

    async def settle() -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    try:
        engine.trigger("app", ("/p/app.py",))
        await settle()
        assert runner.updates == [("/p/app.py",)]
        assert pending() == ["/p/app.py"]  # running, not applied yet
        runner.go.set()
        await settle()
        assert store.get("resource", "app").status["updateStatus"] == "error"
        assert pending() == ["/p/app.py"]  # failed: still not applied
        runner.failing = False
        engine.trigger("app", cause="the registry localhost:5000 is back")
        await settle()
        assert pending() == ["/p/app.py"]
        runner.go.set()
        await settle()
        assert store.get("resource", "app").status["updateStatus"] == "ok"
        assert pending() == []
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.close()
