"""Resources of a kind this version cannot run yet (docker_compose, k8s_custom_deploy)."""

from __future__ import annotations

from devloop.engine.runner import RuntimeReport, UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.model import plan as p


class UnsupportedRunner:
    def __init__(self, resource: p.Resource) -> None:
        self.name = resource.name
        self.resource = resource

    async def update(self, changed_files: tuple[str, ...]) -> None:
        raise UpdateError(f"resources of type {self.resource.type.value!r} cannot run yet; "
                          "they are evaluated into the plan only")

    def runtime(self) -> RuntimeReport:
        return RuntimeReport(RuntimeState.NOT_APPLICABLE)

    async def stop(self) -> None:
        return None
