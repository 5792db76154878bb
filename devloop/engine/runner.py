"""The interface every resource kind implements, and the errors an update can end with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from devloop.engine.scheduler import RuntimeState
from devloop.model import plan as p

if TYPE_CHECKING:  # the seam's module imports the Kubernetes adapters: only for types
    from devloop.engine.k8s_seam import ClusterSeam


class UpdateError(Exception):
    """An update (build, deploy, cmd) failed; the message says which step and why."""


@dataclass
class RuntimeReport:
    """What a runner observed about the running thing since its last update."""

    state: RuntimeState = RuntimeState.UNKNOWN
    reason: str = ""
    alerts: list[str] = field(default_factory=list)
    details: dict[str, object] = field(default_factory=dict)
    # When an OK state has held long enough to be trusted (monotonic seconds; see `ci`):
    # None for runners that cannot tell, whose OK `ci` watches for a fixed time instead.
    stable_at: float | None = None
    # The event behind an alert that one showed (alert text -> the event's facet), kept
    # with the alert as its evidence.
    events: dict[str, dict[str, object]] = field(default_factory=dict)


class ResourceRunner(Protocol):
    name: str

    async def update(self, changed_files: tuple[str, ...]) -> None:
        """Bring the resource up to date; raise UpdateError on failure."""
        ...

    def runtime(self) -> RuntimeReport:
        """The current runtime observation (cheap; runners observe in their own tasks)."""
        ...

    async def stop(self) -> None:
        """Stop everything this runner started locally (processes, streams, forwards)."""
        ...


def _ignore_publish(kind: str, name: str, spec: dict[str, object],
                    status: dict[str, object]) -> None:
    return None


def _ignore_delete(kind: str, name: str) -> None:
    return None


@dataclass
class RunnerHooks:
    """How runners report back: log lines, a coalescing 'something changed' signal, and
    objects of their own kinds (pods, port-forwards, live updates) for the store."""

    log: Callable[[str, str, str, str], None]  # resource, text, source, prefix
    changed: Callable[[], None]
    publish: Callable[[str, str, dict[str, object], dict[str, object]], object] = _ignore_publish
    delete: Callable[[str, str], None] = _ignore_delete


@dataclass(frozen=True)
class RunnerContext:
    """What a session gives every runner it makes: its hooks, and the cluster (None when
    the session started without a Kubernetes resource)."""

    hooks: RunnerHooks
    cluster: ClusterSeam | None = None


# Makes the runner of one resource of a plan; a reload makes new ones (see runner_registry).
RunnerFactory = Callable[[p.Resource, p.Plan, RunnerContext], ResourceRunner]
