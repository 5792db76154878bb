"""A Compose service's health from its containers' state: ready, waiting, or failing, and why.

Beyond Tilt (which calls a service ready once its container started): a service with a
healthcheck is ready only when Docker reports it healthy, so `resource_deps` on it wait
as `depends_on: condition: service_healthy` does in Compose.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from devloop.compose.containers import ContainerState, started_at

# Docker itself counts a run of at least 10 s as stable (its restart backoff resets); a
# container restarted more recently is crash looping, even if it is running at the moment.
STABLE_RUN_SECONDS = 10.0


class Health(enum.Enum):
    PENDING = "pending"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Assessment:
    health: Health
    reason: str
    alerts: tuple[str, ...] = field(default=())


def assess(containers: Sequence[ContainerState],
           baseline: Mapping[str, int] | None = None, *, now: float | None = None,
           last_exit: Mapping[str, int] | None = None) -> Assessment:
    """Combine the service's containers (one per replica): the worst one decides.

    `baseline` maps a container ID to its restart count when the service was last brought
    up, so an alert counts only the restarts since then. `last_exit` maps a container ID to
    the exit code last seen while it was stopped: a running container's state has none."""
    if not containers:
        return Assessment(Health.PENDING, "no container yet")
    before = baseline or {}
    clock = time.time() if now is None else now
    exits = last_exit or {}
    results = [_one(container, before.get(container.id, 0), clock, exits.get(container.id))
               for container in containers]
    for wanted in (Health.FAILED, Health.PENDING):
        worst = [result for result in results if result.health == wanted]
        if worst:
            return Assessment(wanted, worst[0].reason,
                              tuple(alert for result in results for alert in result.alerts))
    alerts = tuple(alert for result in results for alert in result.alerts)
    return Assessment(Health.READY, results[0].reason, alerts)


def _one(container: ContainerState, restarts_before: int, now: float,
         last_exit: int | None) -> Assessment:
    restarted = container.restarts - restarts_before
    times = f"{restarted} time{'s' if restarted != 1 else ''}"
    exit_note = f", last exit code {last_exit}" if last_exit is not None else ""
    restart_alert = (f"container {container.name} restarted {times}{exit_note}"
                     if restarted > 0 else "")
    alerts = (restart_alert,) if restart_alert else ()
    status = container.status
    if status == "running":
        if restarted > 0 and now - started_at(container) < STABLE_RUN_SECONDS:
            message = f"container {container.name} is crash looping: restarted {times}{exit_note}"
            return Assessment(Health.FAILED, message, (message,))
        if container.health == "starting":
            return Assessment(Health.PENDING, "running, healthcheck starting", alerts)
        if container.health == "unhealthy":
            detail = f": {container.health_log}" if container.health_log else ""
            message = f"container {container.name} is unhealthy{detail}"
            return Assessment(Health.FAILED, message, (*alerts, message))
        return Assessment(Health.READY, "healthy" if container.health == "healthy"
                          else "running", alerts)
    if status == "restarting":
        message = (f"container {container.name} is restarting after exit code "
                   f"{container.exit_code} ({container.restarts} restarts)")
        return Assessment(Health.FAILED, message, (message,))
    if status == "exited":
        if container.exit_code == 0:
            # A one-shot service (a migration, a seed job) finished its work.
            return Assessment(Health.READY, "completed (exit code 0)", alerts)
        message = f"container {container.name} exited with code {container.exit_code}"
        if container.error:
            message += f": {container.error}"
        return Assessment(Health.FAILED, message, (message,))
    if status == "dead":
        message = f"container {container.name} is dead" + (
            f": {container.error}" if container.error else "")
        return Assessment(Health.FAILED, message, (message,))
    if status == "paused":
        return Assessment(Health.PENDING, f"container {container.name} is paused", alerts)
    return Assessment(Health.PENDING, f"container {container.name} is {status or 'unknown'}",
                      alerts)
