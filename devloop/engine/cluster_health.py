"""The session's watch over the real parts it depends on: alerts within seconds, retries after.

One monitor per session probes each part every PROBE_EVERY_SECONDS: the API server
(`/readyz`, so a lost etcd shows too), the kubelet of every node that runs the session's
pods, and, when images are built, the Docker engine and the registry pushed to. A part
that fails a probe is an `alert` object (type `cluster`, keyed by the part) and a line in
the Tiltfile log
at once; Kubernetes resources then say the cluster is unreachable (`overlay`) instead of
showing a stale "ready". When the part answers again its alert goes, the log says after
how long, and every resource whose update failed while the part was away is updated
again, so a change made during the outage is applied by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from devloop.engine.alerts import ALERT_KIND, Alert, AlertType, alert_id, raise_alert
from devloop.engine.runner import RuntimeReport
from devloop.engine.scheduler import RuntimeState
from devloop.engine.tasks import spawn

# Probe period while everything answers: a fault shows within this plus one probe's
# timeout (2 s), inside the 5 s a person notices a stale screen in.
PROBE_EVERY_SECONDS = 2.0
# Probe period while a part fails: its return is seen (and the retries start) sooner.
PROBE_FAILING_EVERY_SECONDS = 1.0
# A probe that has not answered after this long counts as failed (its thread goes on, and
# a late answer is taken at the next round): with the 2 s period, a part that stops
# answering is alerted within 4.5 s.
PROBE_TIMEOUT_SECONDS = 2.5
# An update that failed this long before a part's failure was seen may still have failed
# because of it (a push retries for a while before it gives up).
RETRY_MARGIN_SECONDS = 30.0
# The part every other Kubernetes part is asked through.
API_SERVER = "api-server"
# The resource session-wide alerts and log lines belong to.
SESSION_RESOURCE = "(Tiltfile)"


Probe = Callable[[], Awaitable[str]]


class Unwatchable(Exception):
    """Raised by a probe that can never work with these credentials (not a fault)."""


@dataclass(frozen=True)
class Part:
    """A part to watch: `key` names its alert, `label` says it in a sentence, `probe`
    returns '' when healthy, else why not; `cluster`: a Kubernetes part, whose trouble
    makes Kubernetes resources unreachable."""

    key: str
    label: str
    probe: Probe
    cluster: bool = True


@dataclass
class _Seen:
    part: Part
    problem: str = ""
    since: float | None = None  # monotonic, when it first failed
    since_wall: float = 0.0
    task: asyncio.Task[str] | None = None
    unwatchable: bool = False


class EngineView(Protocol):
    """What the monitor needs of the engine: names, update states, and a trigger."""

    def names(self) -> list[str]: ...

    def trigger(self, name: str, changed_files: tuple[str, ...] = (), *,
                cause: str = "triggered") -> None: ...

    def wake(self) -> None: ...


@dataclass
class Reporter:
    """How the monitor reports: log lines, alert objects, and the engine to wake."""

    log: Callable[[str], None]
    publish: Callable[[str, str, dict[str, object], dict[str, object]], None]
    delete: Callable[[str, str], None]
    on_change: Callable[[], None] = lambda: None
    # Called with a recovered part's label and when it first failed (epoch seconds).
    on_recovered: Callable[[str, float], None] = lambda label, since: None
    notes: list[str] = field(default_factory=list)


class ClusterHealth:
    def __init__(self, parts: Callable[[], Iterable[Part]], reporter: Reporter, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        """`parts` is asked before each round (the nodes to watch change with the pods)."""
        self._parts = parts
        self._reporter = reporter
        self._clock = clock
        self._wall = wall
        self._seen: dict[str, _Seen] = {}
        self._task: asyncio.Task[None] | None = None

    # -- what others read
    def problem(self) -> str:
        """Why the cluster cannot be reached now ('' when it can): the first Kubernetes
        part that fails."""
        return next((f"{s.problem}" for s in self._seen.values()
                     if s.part.cluster and s.problem), "")

    def problems(self) -> dict[str, str]:
        return {key: s.problem for key, s in self._seen.items() if s.problem}

    def overlay(self, report: RuntimeReport) -> RuntimeReport:
        """A Kubernetes resource's runtime as it stands with the cluster's health: while
        a part fails, the resource cannot be known ready and says why, with an alert."""
        problem = self.problem()
        if not problem or report.state == RuntimeState.NOT_APPLICABLE:
            return report
        text = f"cluster unreachable: {problem}"
        return replace(report, state=RuntimeState.PENDING, reason=text,
                       alerts=[*report.alerts, text], stable_at=math.inf)

    # -- running
    def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._run(), name="cluster health")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for seen in self._seen.values():
            if seen.task is not None:
                seen.task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not end the watching
                self._reporter.log(f"cluster health: probing failed: {exc!r}")
            failing = any(s.problem for s in self._seen.values())
            await asyncio.sleep(PROBE_FAILING_EVERY_SECONDS if failing else PROBE_EVERY_SECONDS)

    async def check_once(self) -> None:
        """Probe every part once and report what changed: the API server first (with the
        parts outside the cluster), then, if it answered, the parts behind it (kubelets),
        which cannot be asked without it."""
        parts = {part.key: part for part in self._parts()}
        for key in [k for k in self._seen if k not in parts]:
            gone = self._seen.pop(key)
            if gone.problem:
                self._reporter.delete(ALERT_KIND, _alert_name(key))
        for part in parts.values():
            self._seen.setdefault(part.key, _Seen(part)).part = part
        first = [key for key, part in parts.items() if key == API_SERVER or not part.cluster]
        changed = await self._probe(first)
        api = self._seen.get(API_SERVER)
        behind = [key for key in parts if key not in first]
        if api is not None and api.problem:
            # Unknown while the API server is away: not a problem of their own.
            for key in behind:
                changed = self._forget(self._seen[key]) or changed
        else:
            changed = await self._probe(behind) or changed
        if changed:
            self._reporter.on_change()

    async def _probe(self, keys: list[str]) -> bool:
        probing: list[tuple[_Seen, asyncio.Task[str]]] = []
        for key in keys:
            seen = self._seen[key]
            if seen.unwatchable:
                continue
            if seen.task is None or seen.task.done():
                # Awaited below; its exception becomes the part's problem.
                seen.task = spawn(_answer(seen.part.probe), name=f"probe {key}", handled=True)
            probing.append((seen, seen.task))
        if not probing:
            return False
        await asyncio.wait([task for _, task in probing], timeout=PROBE_TIMEOUT_SECONDS)
        changed = False
        for seen, task in probing:
            if not task.done():
                problem = (f"{seen.part.label} does not answer (no reply in "
                           f"{PROBE_TIMEOUT_SECONDS:g} s)")
            elif isinstance(task.exception(), Unwatchable):
                seen.unwatchable = True
                self._reporter.log(f"cluster health: {seen.part.label} cannot be watched "
                                   f"with these credentials ({task.exception()})")
                continue
            elif task.exception() is not None:
                problem = f"{seen.part.label}: probe failed: {task.exception()!r}"
            else:
                problem = task.result()
            changed = self._take(seen, problem) or changed
        return changed

    def _forget(self, seen: _Seen) -> bool:
        """What was known of a part that cannot be asked now: its alert goes, quietly."""
        if not seen.problem:
            return False
        self._reporter.delete(ALERT_KIND, _alert_name(seen.part.key))
        seen.problem, seen.since = "", None
        return True

    def _take(self, seen: _Seen, problem: str) -> bool:
        key, label = seen.part.key, seen.part.label
        if problem == seen.problem:
            return False
        if problem:
            if not seen.problem:
                seen.since, seen.since_wall = self._clock(), self._wall()
                self._reporter.log(f"WARNING: {problem}")
            seen.problem = problem
            raise_alert(self._reporter.publish, Alert(AlertType.CLUSTER, SESSION_RESOURCE,
                                                       problem, key=key))
            return True
        lasted = self._clock() - seen.since if seen.since is not None else 0.0
        self._reporter.log(f"{label[0].upper()}{label[1:]} is back after {lasted:.1f} s")
        self._reporter.delete(ALERT_KIND, _alert_name(key))
        since_wall = seen.since_wall
        seen.problem, seen.since = "", None
        self._reporter.on_recovered(label, since_wall)
        return True


def _alert_name(part: str) -> str:
    return alert_id(AlertType.CLUSTER, SESSION_RESOURCE, part)


async def _answer(probe: Probe) -> str:
    return await probe()


def retry_failed_updates(engine: EngineView, failed_at: Callable[[str], float | None],
                         label: str, since: float, *,
                         eligible: Callable[[str], bool] = lambda name: True) -> list[str]:
    """Update again every eligible resource whose last update failed after `since` (less
    RETRY_MARGIN_SECONDS): it may have failed only because `label` was away. Returns the
    names triggered. `failed_at(name)` says when a resource's last update failed (epoch
    seconds), None when it did not fail."""
    names = []
    for name in engine.names():
        when = failed_at(name)
        if when is None or when < since - RETRY_MARGIN_SECONDS or not eligible(name):
            continue
        engine.trigger(name, cause=f"{label} is back")
        names.append(name)
    return names


# The monitor of each session's cluster (the object its runners hold as their seam).
_MONITORS: weakref.WeakKeyDictionary[Any, ClusterHealth] = weakref.WeakKeyDictionary()
# How often an update waiting for the cluster looks again.
WAIT_POLL_SECONDS = 0.5


def attach(cluster: Any, health: ClusterHealth) -> None:
    """Make `health` the monitor of `cluster` (see `health_of`)."""
    _MONITORS[cluster] = health


def health_of(cluster: Any) -> ClusterHealth | None:
    """The monitor watching `cluster`, if the session started one."""
    try:
        return _MONITORS.get(cluster)
    except TypeError:  # a seam that cannot be weakly referenced has none
        return None


def overlay_for(cluster: Any, report: RuntimeReport) -> RuntimeReport:
    """`report` as the cluster's health lets it stand (see `ClusterHealth.overlay`)."""
    health = health_of(cluster)
    return report if health is None else health.overlay(report)


async def until_reachable(cluster: Any, log: Callable[[str], None]) -> None:
    """Wait while the cluster's monitor says it cannot be reached, saying so once: an
    update started now would only fail (or hang a minute per call)."""
    health = health_of(cluster)
    if health is None or not health.problem():
        return
    log(f"Waiting for the cluster before updating: {health.problem()}")
    started = time.monotonic()
    while health.problem():
        await asyncio.sleep(WAIT_POLL_SECONDS)
    log(f"The cluster is back after {time.monotonic() - started:.1f} s: updating")
