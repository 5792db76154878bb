"""A resource that cannot run in this session: each update fails saying why."""

from __future__ import annotations

from devloop.engine.runner import RuntimeReport, UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.model import plan as p


class UnsupportedRunner:
    def __init__(self, resource: p.Resource, reason: str = "") -> None:
        self.name = resource.name
        self.resource = resource
        self.reason = reason or (f"resources of type {resource.type.value!r} cannot run "
                                 "yet; they are evaluated into the plan only")

    async def update(self, changed_files: tuple[str, ...]) -> None:
        raise UpdateError(self.reason)

    def runtime(self) -> RuntimeReport:
        return RuntimeReport(RuntimeState.NOT_APPLICABLE)

    async def stop(self) -> None:
        return None
