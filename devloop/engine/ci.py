"""`devloop ci`: when is the run done, and did it succeed?"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from devloop.engine.engine import Engine
from devloop.engine.scheduler import RuntimeState, UpdateState

POLL_SECONDS = 0.25
DEFAULT_TIMEOUT_SECONDS = 30 * 60


@dataclass(frozen=True)
class CiOutcome:
    ok: bool
    failed_resource: str = ""
    message: str = ""


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


async def wait_for_outcome(engine: Engine, timeout: float) -> CiOutcome:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        outcome = judge(engine)
        if outcome is not None:
            return outcome
        if loop.time() >= deadline:
            pending = [v.name for v in engine.views() if v.enabled and not v.ready
                       and not (v.update == UpdateState.NONE and not v.dirty)]
            return CiOutcome(False, pending[0] if pending else "",
                             f"timeout after {timeout:.0f}s waiting for: {', '.join(pending)}")
        await asyncio.sleep(POLL_SECONDS)
