"""`devloop ci`: when is the run done, and did it succeed?"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from devloop.engine.engine import Engine
from devloop.engine.scheduler import RuntimeState, UpdateState

POLL_SECONDS = 0.25
DEFAULT_TIMEOUT_SECONDS = 30 * 60
# A container that exits right after it starts is briefly Running and Ready (there is no
# readiness probe to say otherwise) before the kubelet notices the exit, which it does on
# its next relist (about a second). Success must hold this long before `ci` believes it.
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
    healthy_since: float | None = None
    while True:
        note_ready()
        outcome = judge(engine)
        if outcome is not None and not outcome.ok:
            return outcome
        if outcome is None:
            healthy_since = None
        elif healthy_since is None:
            healthy_since = loop.time()
        elif loop.time() - healthy_since >= settle:
            return outcome
        if loop.time() >= deadline:
            pending = [v.name for v in engine.views() if v.enabled and not v.ready
                       and not (v.update == UpdateState.NONE and not v.dirty)]
            return CiOutcome(False, pending[0] if pending else "",
                             f"timeout after {timeout:.0f}s waiting for: {', '.join(pending)}")
        await asyncio.sleep(POLL_SECONDS)
