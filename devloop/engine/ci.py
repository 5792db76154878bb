"""`devloop ci`: when is the run done, and did it succeed?"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from devloop.engine.engine import Engine
from devloop.engine.scheduler import RuntimeState, UpdateState
from devloop.engine.store import Change

# ci judges again on every change in the store, when a resource's trust is due, and at
# least this often (a runner state that reaches no store object).
POLL_SECONDS = 0.05
# A change comes in bursts (a pod, its resource, a build): the rest of it is gathered this
# long, so a project with hundreds of resources is not judged on every single object.
GATHER_SECONDS = 0.02
DEFAULT_TIMEOUT_SECONDS = 30 * 60
# A process that exits right after it starts is briefly ready. A Kubernetes resource says
# when its containers have run ready long enough (`RuntimeReport.stable_at`, see
# K8sRunner); a runner that cannot tell (a serve_cmd, a Compose service) must have stayed
# ready this long before `ci` believes it.
SETTLE_SECONDS = 3.0


@dataclass(frozen=True)
class CiOutcome:
    ok: bool
    failed_resource: str = ""
    message: str = ""
    # For the reports: seconds from the start of the wait until each resource was first seen
    # ready, and the wall-clock start and end of the wait.
    ready_after: Mapping[str, float] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0


def judge(engine: Engine) -> CiOutcome | None:
    """Done when every enabled, auto-initialised resource is ready; failed on the first
    error. None means keep waiting. Resources with auto_init=False are not waited for,
    like Tilt."""
    waiting = False
    for view in engine.views():
        if not view.enabled:
            continue
        if view.update == UpdateState.ERROR or view.runtime == RuntimeState.ERROR:
            return CiOutcome(False, view.name, engine.error_of(view.name))
        if view.update == UpdateState.NONE and not view.dirty:
            continue
        if not view.ready or view.dirty:
            waiting = True
    return None if waiting else CiOutcome(True)


async def wait_for_outcome(engine: Engine, timeout: float,
                           settle: float = SETTLE_SECONDS) -> CiOutcome:
    started = time.time()
    ready_after: dict[str, float] = {}

    def note_ready() -> None:
        for view in engine.views():
            if view.ready and not view.dirty and view.name not in ready_after:
                ready_after[view.name] = round(time.time() - started, 3)

    outcome = await _wait(engine, timeout, settle, note_ready)
    return dataclasses.replace(outcome, ready_after=ready_after, started=started,
                               finished=time.time())


async def _wait(engine: Engine, timeout: float, settle: float,
                note_ready: Callable[[], None]) -> CiOutcome:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    ready_since: dict[str, float] = {}  # resource -> when it was last seen become ready
    changes = engine.store.subscribe()  # judge again at once when anything changes
    try:
        while True:
            note_ready()
            outcome = judge(engine)
            if outcome is not None and not outcome.ok:
                return outcome
            now = time.monotonic()
            ready_since = {view.name: ready_since.get(view.name, now)
                           for view in engine.views() if view.ready and not view.dirty}
            if outcome is not None and _settled(engine, ready_since, now, settle):
                return outcome
            if loop.time() >= deadline:
                pending = [v.name for v in engine.views() if v.enabled and not v.ready
                           and not (v.update == UpdateState.NONE and not v.dirty)]
                return CiOutcome(False, pending[0] if pending else "",
                                 f"timeout after {timeout:.0f}s waiting for: "
                                 f"{', '.join(pending)}")
            wait = POLL_SECONDS
            if outcome is not None:  # only trust is missing: wake when the first is due
                wait = min(wait, max(0.0, _next_trusted(engine, ready_since, settle) - now))
            await _next_change(changes, wait)
    finally:
        engine.store.unsubscribe(changes)


async def _next_change(changes: asyncio.Queue[Change], timeout: float) -> None:
    """Until something in the store changes, or `timeout` seconds (a runner's state that
    is not published, a clock running out); the changes that came are taken."""
    if changes.empty():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changes.get(), timeout)
            await asyncio.sleep(GATHER_SECONDS)
    while not changes.empty():
        changes.get_nowait()


def _trusted_at(engine: Engine, name: str, since: float, settle: float) -> float:
    """When a ready resource can be believed (monotonic time): its runner's `stable_at`,
    or `settle` seconds after it became ready when the runner cannot tell. A resource with
    no running process (a finished cmd, a Job) has nothing that could still crash."""
    report = engine.runtime_of(name)
    if report.state != RuntimeState.OK:
        return 0.0
    return since + settle if report.stable_at is None else report.stable_at


def _next_trusted(engine: Engine, ready_since: Mapping[str, float], settle: float) -> float:
    """The earliest time a ready resource not yet believed will be (math.inf: none)."""
    now = time.monotonic()
    due = [at for name, since in ready_since.items()
           if (at := _trusted_at(engine, name, since, settle)) > now]
    return min(due, default=math.inf)


def _settled(engine: Engine, ready_since: Mapping[str, float], now: float,
             settle: float) -> bool:
    """Every ready resource has been so long enough to be believed (see `_trusted_at`)."""
    return all(now >= _trusted_at(engine, name, since, settle)
               for name, since in ready_since.items())
