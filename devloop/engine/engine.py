"""The engine loop: decide what updates next, run updates, publish state to the store.

Rules (see engine/README.md): nothing blocking runs on the loop; each resource has at most
one update in flight; a coalescing signal wakes the loop whenever anything changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from devloop.build.dockerfile_deps import with_image_deps
from devloop.engine.alerts import (
    EVIDENCE_LINES,
    Alert,
    AlertType,
    Evidence,
    clear_alert,
    is_raised,
    message_key,
    publisher_of,
    raise_alert,
)
from devloop.engine.logs import LogStore
from devloop.engine.runner import ResourceRunner, RuntimeReport, UpdateError
from devloop.engine.runner_registry import deploys_to_kubernetes
from devloop.engine.scheduler import ResourceView, RuntimeState, UpdateState, next_updates
from devloop.engine.store import Store
from devloop.engine.tasks import Reporter, cancel_and_wait, report_to, spawn
from devloop.engine.trace import TraceBook
from devloop.model import kinds as k
from devloop.model import plan as p

log = logging.getLogger(__name__)

RESOURCE_KIND = k.RESOURCE.name
BUILD_KIND = k.BUILD.name


@dataclass
class _State:
    resource: p.Resource
    runner: ResourceRunner
    dirty: bool
    update: UpdateState = UpdateState.NONE
    changed_files: set[str] = field(default_factory=set)
    last_error: str = ""
    builds: int = 0
    enabled: bool = True
    task: asyncio.Task[None] | None = None
    cause: str = ""  # why the queued update runs, when no file changed
    # Files of the running update and of failed ones: pending until an update succeeds.
    unapplied: frozenset[str] = frozenset()


def _image_or_none(plan: p.Plan, ref: str) -> p.ImageTarget | None:
    try:
        return plan.image(ref)
    except KeyError:
        return None


class Engine:
    def __init__(self, plan: p.Plan, *, store: Store, logs: LogStore,
                 runner_factory: Callable[[p.Resource, p.Plan], ResourceRunner],
                 on_removed: Callable[[p.Resource], Awaitable[None]] | None = None) -> None:
        """`on_removed` tears down what a resource deployed when a reload drops it."""
        plan = with_image_deps(plan)
        self.plan = plan
        self.on_removed = on_removed
        self.store = store
        self.logs = logs
        # Each update's change-to-ready trace (see engine/trace.py).
        self.traces = TraceBook(store, lambda name, text: logs.append(name, text,
                                                                      source="build"))
        self.runner_factory = runner_factory
        self._wake = asyncio.Event()
        self._states: dict[str, _State] = {}
        self._runtime_alerts: dict[str, set[str]] = {}  # resource -> keys of its alerts
        self._order: list[str] = []
        self._closed = False
        self._apply_plan(plan, initial=True)

    # -- plan and triggers
    def _apply_plan(self, plan: p.Plan, *, initial: bool) -> None:
        enabled = set(plan.enabled_resources) if plan.enabled_resources is not None else None
        for resource in plan.resources:
            self._order.append(resource.name)  # Tiltfile order
            auto = resource.auto_init
            state = _State(resource, self.runner_factory(resource, self.plan), dirty=auto)
            state.enabled = enabled is None or resource.name in enabled
            state.update = UpdateState.PENDING if auto else UpdateState.NONE
            self._states[resource.name] = state
            self._publish(resource.name)

    async def replace_plan(self, plan: p.Plan) -> list[str]:
        """Adopt a re-evaluated Tiltfile: only resources whose definition (or images)
        changed update; removed ones stop and leave the store. Returns changed names."""
        old = self.plan
        plan = await asyncio.to_thread(with_image_deps, plan)
        self.plan = plan
        new_names = [r.name for r in plan.resources]
        changed: list[str] = []
        for name in [n for n in self._order if n not in new_names]:
            state = self._states.pop(name)
            if state.task is not None:
                state.task.cancel()
            await state.runner.stop()
            self.store.delete(RESOURCE_KIND, name)
            changed.append(name)
            if self.on_removed is not None:
                try:
                    await self.on_removed(state.resource)
                except Exception as exc:  # the cluster may be unreachable; say so, go on
                    self.logs.append(name, f"ERROR: cannot delete removed resource: {exc}",
                                     source="build")
        self._order = new_names
        for resource in plan.resources:
            kept = self._states.get(resource.name)
            if kept is not None and kept.resource == resource and all(
                    _image_or_none(old, ref) == _image_or_none(plan, ref)
                    for ref in resource.image_refs):
                continue
            if kept is not None:
                if kept.task is not None:
                    kept.task.cancel()
                await kept.runner.stop()
            fresh = _State(resource, self.runner_factory(resource, self.plan), dirty=False)
            if kept is not None:
                fresh.builds, fresh.enabled = kept.builds, kept.enabled
            self._states[resource.name] = fresh
            changed.append(resource.name)
            if resource.auto_init or kept is not None:
                self.trigger(resource.name, cause="Tiltfile changed")
            else:
                self._publish(resource.name)
        self.wake()
        return changed

    def names(self) -> list[str]:
        return list(self._order)

    def trigger(self, name: str, changed_files: tuple[str, ...] = (), *,
                cause: str = "triggered") -> None:
        """Queue an update; `cause` names why when no file changed (the log says it)."""
        state = self._states.get(name)
        if state is None:
            raise KeyError(name)
        state.dirty = True
        state.changed_files.update(changed_files)
        if not changed_files:
            state.cause = cause
        if state.update != UpdateState.IN_PROGRESS:
            state.update = UpdateState.PENDING
        self._publish(name)
        self.wake()

    def files_changed(self, name: str, files: tuple[str, ...]) -> None:
        """A file a resource depends on changed: auto resources update, manual ones wait."""
        state = self._states.get(name)
        if state is None:
            return
        if state.resource.trigger_mode == p.TriggerMode.MANUAL:
            state.changed_files.update(files)
            self._publish(name)
            return
        self.trigger(name, files)

    def set_enabled(self, name: str, enabled: bool) -> None:
        state = self._states[name]
        state.enabled = enabled
        if enabled:
            self.trigger(name, cause="enabled")
        else:
            # A runner may tear down what it runs when disabled (compose removes the container).
            getattr(state.runner, "on_disabled", lambda: None)()
            self._publish(name)

    def wake(self) -> None:
        self._wake.set()

    # -- views
    def view(self, name: str) -> ResourceView:
        state = self._states[name]
        runtime = state.runner.runtime().state
        deps = tuple(d for d in state.resource.resource_deps if d in self._states)
        exclusive = (state.resource.type == p.ResourceType.LOCAL
                     and state.resource.cmd is not None and not state.resource.allow_parallel)
        return ResourceView(name, deps, state.dirty, state.update, runtime, state.enabled,
                            exclusive, k8s=deploys_to_kubernetes(state.resource.type))

    def views(self) -> list[ResourceView]:
        return [self.view(name) for name in self._order]

    def runtime_of(self, name: str) -> RuntimeReport:
        return self._states[name].runner.runtime()

    def error_of(self, name: str) -> str:
        state = self._states[name]
        if state.update == UpdateState.ERROR:
            return state.last_error
        report = state.runner.runtime()
        return report.reason if report.state == RuntimeState.ERROR else ""

    # -- the loop
    async def run(self) -> None:
        while not self._closed:
            self._wake.clear()
            decision = next_updates(self.views(), self.plan.settings.update.max_parallel_updates)
            for name in decision.start:
                self._start(name)
            for name in self._order:
                self._publish(name, waiting=decision.waiting.get(name, ""))
            await self._wake.wait()

    def _start(self, name: str) -> None:
        state = self._states[name]
        state.dirty = False
        files = tuple(sorted(state.changed_files))
        state.changed_files.clear()
        state.unapplied |= set(files)
        cause, state.cause = state.cause, ""
        state.update = UpdateState.IN_PROGRESS
        state.task = spawn(self._update(state, files, cause), name=f"update:{name}",
                           resource=name, on_error=self.task_reporter(name))

    def task_reporter(self, resource: str) -> Reporter:
        """Where a failed background task of `resource` is reported: its log, an alert."""
        return report_to(lambda text: self.logs.append(resource, text, source="build"),
                         publisher_of(self.store))

    async def _update(self, state: _State, files: tuple[str, ...], why: str = "") -> None:
        name = state.resource.name
        state.builds += 1
        started = time.time()
        cause = ("changed files: " + ", ".join(files[:5])) if files else (
            "initial update" if state.builds == 1 else why or "triggered")
        self.logs.append(name, f"Update #{state.builds} ({cause})", source="build")
        self._publish(name)
        trace = self.traces.begin(name, f"{name}-{state.builds}", files, started)
        try:
            await state.runner.update(files)
        except asyncio.CancelledError:
            raise
        except UpdateError as exc:
            state.update, state.last_error = UpdateState.ERROR, str(exc)
            self.logs.append(name, f"ERROR: {exc}", source="build")
        except Exception as exc:  # a bug in a runner must not kill the engine
            state.update, state.last_error = UpdateState.ERROR, f"internal error: {exc}"
            self.logs.append(name, traceback.format_exc(), source="build")
        else:
            state.update, state.last_error = UpdateState.OK, ""
            state.unapplied = frozenset()
        finally:
            duration = time.time() - started
            self.store.put(BUILD_KIND, f"{name}-{state.builds}", spec=k.BuildSpec(
                resource=name, cause=cause, files=files).to_json(), status=k.BuildStatus(
                start_time=started, duration=round(duration, 3),
                error=state.last_error if state.update == UpdateState.ERROR else "",
            ).to_json())
            self.traces.finish(trace, failed=state.update != UpdateState.OK)
            self._publish(name)
            self.wake()

    def _publish(self, name: str, waiting: str = "") -> None:
        state = self._states[name]
        report = state.runner.runtime()
        resource = state.resource
        self.store.put(RESOURCE_KIND, name, spec=k.ResourceSpec(
            type=resource.type.value, labels=resource.labels,
            resource_deps=resource.resource_deps,
            trigger_mode="manual" if resource.trigger_mode == p.TriggerMode.MANUAL else "auto",
            links=tuple(link.url for link in resource.links) + tuple(
                f"http://{pf.host}:{pf.local_port}/{pf.link_path.lstrip('/')}"
                for pf in resource.port_forwards),
        ).to_json(), status=k.ResourceStatus(
            update_status=state.update.value, runtime_status=report.state.value,
            runtime_reason=report.reason,
            pending_changes=tuple(sorted(state.changed_files | state.unapplied)),
            error=state.last_error, builds=state.builds, enabled=state.enabled,
            waiting=waiting, details=report.details,
        ).to_json())
        self._publish_alerts(name, state, report)

    def _publish_alerts(self, name: str, state: _State, report: RuntimeReport) -> None:
        """The runner's runtime alerts (each keyed by its message, so none renames another)
        and the failed update's; problems that went away take their alerts with them."""
        publish = publisher_of(self.store)
        keys: set[str] = set()
        for text in report.alerts:
            key = message_key(text)
            keys.add(key)
            if not is_raised(self.store, AlertType.RUNTIME, name, key, text):
                raise_alert(publish, Alert(AlertType.RUNTIME, name, text, key=key, evidence=(
                    Evidence(tuple(self.logs.tail(name, EVIDENCE_LINES)),
                             report.events.get(text)))))
        for key in self._runtime_alerts.get(name, set()) - keys:
            clear_alert(self.store.delete, AlertType.RUNTIME, name, key, current=self.store)
        self._runtime_alerts[name] = keys
        if state.update == UpdateState.ERROR:
            if not is_raised(self.store, AlertType.UPDATE, name, "", state.last_error):
                raise_alert(publish, Alert(AlertType.UPDATE, name, state.last_error, evidence=(
                    Evidence(tuple(self.logs.tail(name, EVIDENCE_LINES))))))
        else:
            clear_alert(self.store.delete, AlertType.UPDATE, name, current=self.store)

    async def close(self) -> None:
        self._closed = True
        self.wake()
        for state in self._states.values():
            await cancel_and_wait(state.task)
            with contextlib.suppress(Exception):
                await state.runner.stop()
