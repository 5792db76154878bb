"""A Docker Compose service: build its images, `docker compose up` it, watch its containers.

Update: build every image the service runs (a `docker_build`/`custom_build` matching the
service's image with devloop's builder, then tagged with the name Compose looks for; a
`build:` section with `docker compose build`), then `docker compose up --no-deps --no-build
-d <service>` as Tilt does; or, when the changed files allow it, live update the running
container over the Docker API (see `devloop/compose/sync.py`).
Runtime: a monitor polls the service's containers (by Compose's labels), streams each
one's logs into the resource (again after every restart), and reports the state: ready
only when running (and healthy, when the service has a healthcheck), failed with an alert
and the last log lines when a container exits non-zero, restarts or turns unhealthy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml

from devloop.build.custom_builder import CustomBuilder
from devloop.build.docker_builder import BuildError, DockerBuilder
from devloop.compose.cli import ComposeCli, ComposeError
from devloop.compose.containers import (
    ContainerError,
    ContainerState,
    DockerContainers,
    finished_at,
    started_at,
)
from devloop.compose.status import Health, assess
from devloop.compose.sync import RunFailed, SyncFailed, update_container
from devloop.engine import live_update as lu
from devloop.engine.local_runner import plan_environment
from devloop.engine.runner import (
    ResourceRunner,
    RunnerContext,
    RunnerHooks,
    RuntimeReport,
    UpdateError,
)
from devloop.engine.scheduler import RuntimeState
from devloop.engine.tasks import cancel_and_wait, resource_reporter, spawn
from devloop.k8s.sync import tar_archive
from devloop.model import kinds as k
from devloop.model import plan as p

if TYPE_CHECKING:
    from devloop.engine.runner_registry import TeardownContext

MONITOR_PERIOD_SECONDS = 1.0
# Lines of a service's own output kept to show with an alert (why did it exit?).
ALERT_LOG_LINES = 15
# The image kind the Tiltfile gives a service's `build:` section (built by Compose).
COMPOSE_BUILD_KIND = "docker_compose"
CONTAINER_KIND = k.CONTAINER.name

_HEALTH_STATE = {Health.READY: RuntimeState.OK, Health.PENDING: RuntimeState.PENDING,
                 Health.FAILED: RuntimeState.ERROR}


class ComposeBackend:
    """What the services of one Compose project share in a session: the CLI (and its lock
    around `up`), the Docker API client, the image builder, the effective configuration."""

    def __init__(self, project: p.ComposeProject, *, environ: dict[str, str],
                 cli: ComposeCli | None = None, containers: Any = None,
                 builder: Any = None) -> None:
        self.project = project
        self.cli = cli or ComposeCli(project, environ=environ)
        self.containers = containers or DockerContainers()
        self.builder = builder or DockerBuilder()
        self._config: dict[str, Any] | None = None
        self._config_lock = asyncio.Lock()

    async def effective_config(self) -> dict[str, Any]:
        """`docker compose config` once per project (a reload makes a new backend)."""
        async with self._config_lock:
            if self._config is None:
                self._config = await self.cli.config()
            return self._config


_backends: dict[p.ComposeProject, ComposeBackend] = {}


def backend_for(plan: p.Plan, environ: dict[str, str]) -> ComposeBackend:
    """The session's backend for the plan's project (services of one plan share it)."""
    assert plan.compose is not None
    backend = _backends.get(plan.compose)
    if backend is None:
        _backends.clear()  # an older evaluation's project is no longer used
        backend = _backends[plan.compose] = ComposeBackend(plan.compose, environ=environ)
    return backend


def compose_image_name(project: p.ComposeProject, service: str) -> str:
    """The image Compose runs for a service: its `image:`, else `<project>-<service>`."""
    config = json.loads(project.services_json).get(service) or {}
    return str(config.get("image") or f"{project.project_name}-{service}")


class ComposeRunner:
    def __init__(self, resource: p.Resource, *, plan: p.Plan, hooks: RunnerHooks,
                 backend: ComposeBackend) -> None:
        self.name = resource.name
        self.resource = resource
        self.plan = plan
        self.hooks = hooks
        self.backend = backend
        assert plan.compose is not None
        self.project = plan.compose
        self.service = resource.compose_service
        self._report = RuntimeReport(RuntimeState.PENDING, "not started")
        self._monitor: asyncio.Task[None] | None = None
        self._followers: dict[str, tuple[float, Callable[[], None]]] = {}
        self._ended: set[str] = set()
        self._tail: collections.deque[str] = collections.deque(maxlen=ALERT_LOG_LINES)
        self._baseline: dict[str, int] = {}
        self._last_exit: dict[str, int] = {}
        self._published: set[str] = set()
        self._details: dict[str, object] = {}
        self._deployed: dict[str, str] = {}  # image ref -> image ID the service runs
        self._deployed_containers: set[str] = set()
        self._pending: set[str] = set()
        self._live_updates = 0
        self._disabled = False
        self._disable_task: asyncio.Task[None] | None = None

    def _log(self, text: str, source: str = "build", prefix: str = "") -> None:
        self.hooks.log(self.name, text, source, prefix)

    def _log_from(self, container: str, text: str) -> None:
        self._log(text, prefix=container)

    # -- update
    async def update(self, changed_files: tuple[str, ...]) -> None:
        self._disabled = False
        if self._disable_task is not None:
            await self._disable_task
        self._pending.update(changed_files)
        files = tuple(sorted(self._pending))
        started = time.monotonic()
        if self._deployed and files:
            choice = await self._choose(files)
            if isinstance(choice, lu.FullBuild):
                if self._has_live_update():
                    self._log(f"Will not live update: {choice.reason}. Full rebuild.")
                    self._publish_live_update(files, [], started, "fallback", choice.reason)
            else:
                try:
                    await self._live_update(files, *choice, started=started)
                except SyncFailed as exc:
                    self._log(f"Live update failed: {exc}. Falling back to a full rebuild.")
                else:
                    self._pending.clear()
                    return
        await self._full_update()
        self._pending.clear()

    async def _full_update(self) -> None:
        images = await self._build_images()
        self._log(f"Running docker compose up for service {self.service}")
        try:
            await self.backend.cli.up(self.service, log=self._log)
        except ComposeError as exc:
            raise UpdateError(str(exc)) from None
        self._deployed = images
        try:
            containers = await self.backend.containers.containers(
                self.project.project_name, self.service)
        except ContainerError as exc:
            raise UpdateError(str(exc)) from None
        self._deployed_containers = {c.id for c in containers}
        self._baseline = {c.id: c.restarts for c in containers}
        self._details["composeConfig"] = await self._service_config()
        self._set(RuntimeReport(RuntimeState.PENDING, "starting", details=self._details))
        if self._monitor is None or self._monitor.done():
            self._monitor = spawn(self._monitor_loop(), name=f"compose-monitor:{self.name}",
                                  resource=self.name,
                                  on_error=resource_reporter(self.hooks, self.name))

    async def _build_images(self) -> dict[str, str]:
        """Build the service's images (image_deps first); map ref -> image ID."""
        built: dict[str, str] = {}
        refs: dict[str, str] = {}  # ref -> the ref an image_dep consumer sees
        target = compose_image_name(self.project, self.service)
        for image in self.plan.images_for(self.resource.image_refs):
            try:
                if image.kind == COMPOSE_BUILD_KIND:
                    self._log(f"Building image of service {self.service} with docker compose "
                              "build")
                    await self.backend.cli.build(self.service, log=self._log)
                    image_id = await self.backend.builder.image_id(target)
                    built[image.ref] = image_id or ""
                    continue
                self._log(f"Building image {image.ref}")
                if isinstance(image, p.DockerBuild):
                    result = await self.backend.builder.build(image, log=self._log)
                else:
                    result = await CustomBuilder(self.backend.builder).build(
                        image, log=self._log, image_deps=refs)
            except (BuildError, ComposeError) as exc:
                raise UpdateError(f"image {image.ref}: {exc}") from None
            built[image.ref], refs[image.ref] = result.image_id, result.ref
            if image.ref in self.resource.image_refs:
                if not result.image_id:
                    raise UpdateError(f"image {image.ref}: the build left no image in the "
                                      "local Docker engine for Compose to run")
                try:
                    await self.backend.containers.tag(result.image_id, target)
                except ContainerError as exc:
                    raise UpdateError(str(exc)) from None
                self._log(f"Tagged {result.ref} as {target} for Compose")
        return built

    async def _service_config(self) -> str:
        try:
            config = await self.backend.effective_config()
        except ComposeError as exc:
            return f"# docker compose config failed: {exc}"
        service = (config.get("services") or {}).get(self.service, {})
        return yaml.safe_dump({self.service: service}, sort_keys=False)

    # -- live update
    def _images(self) -> list[p.ImageTarget]:
        return self.plan.images_for(self.resource.image_refs)

    def _has_live_update(self) -> bool:
        return any(image.live_update for image in self._images())

    def _restarts(self, ref: str) -> bool:
        return any(isinstance(step, p.RestartContainerStep)
                   for step in self.plan.image(ref).live_update)

    async def _choose(self, files: tuple[str, ...]
                      ) -> lu.FullBuild | tuple[lu.LiveUpdate, list[ContainerState]]:
        # restart_container() is done here through the Docker API, so the decision is taken
        # on the other steps and the restart added afterwards.
        images = [dataclasses.replace(image, live_update=tuple(
            step for step in image.live_update if not isinstance(step, p.RestartContainerStep)))
            if image.live_update else image for image in self._images()]
        if any(image.kind == COMPOSE_BUILD_KIND for image in images):
            return lu.FullBuild("the service's image is built by docker compose build")
        decision = lu.decide(images, self._deployed, files,
                             base=os.path.dirname(self.plan.tiltfile))
        if isinstance(decision, lu.FullBuild):
            return decision
        try:
            containers = await self.backend.containers.containers(
                self.project.project_name, self.service)
        except ContainerError as exc:
            return lu.FullBuild(str(exc))
        running = [c for c in containers if c.status == "running"]
        if not running:
            return lu.FullBuild(f"no running container of service {self.service}")
        for container in running:
            if container.id not in self._deployed_containers:
                return lu.FullBuild(f"container {container.name} was created after the "
                                    "last deploy")
        return decision, running

    async def _live_update(self, files: tuple[str, ...], decision: lu.LiveUpdate,
                           containers: list[ContainerState], *, started: float) -> None:
        names = [c.name for c in containers]
        steps: list[dict[str, Any]] = []
        base = os.path.dirname(self.plan.tiltfile)
        try:
            for update in decision.images:
                is_input = lu.inputs_of(self.plan.image(update.image_ref), base)
                archive = await asyncio.to_thread(
                    tar_archive, [(c.local, c.remote) for c in update.copies],
                    functools.partial(_excluded, is_input))
                restart = self._restarts(update.image_ref)
                for container in containers:
                    records = await update_container(
                        self.backend.containers, container.id, archive=archive,
                        deletes=update.deletes, runs=update.runs, restart=restart,
                        log=functools.partial(self._log_from, container.name))
                    steps += [{"step": r.step, "detail": r.detail, "exitCode": r.exit_code,
                               "container": container.name} for r in records]
                    if restart:
                        # Files survive a restart, but the new run must not count as a crash.
                        self._baseline[container.id] = self._baseline.get(container.id, 0)
        except SyncFailed as exc:
            self._publish_live_update(files, names, started, "fallback", str(exc), steps)
            raise
        except RunFailed as exc:
            self._publish_live_update(files, names, started, "failed", str(exc), steps)
            raise UpdateError(str(exc)) from None
        elapsed = round((time.monotonic() - started) * 1000)
        self._log(f"Live update: done in {elapsed} ms ({len(files)} changed files, "
                  f"{len(names)} containers)")
        self._publish_live_update(files, names, started, "ok", "", steps)

    def _publish_live_update(self, files: tuple[str, ...], containers: list[str],
                             started: float, result: str, error: str,
                             steps: list[dict[str, Any]] | None = None) -> None:
        self._live_updates += 1
        self.hooks.publish(k.LIVE_UPDATE.name, f"{self.name}-{self._live_updates}",
                           k.LiveUpdateSpec(resource=self.name, files=files,
                                            containers=tuple(containers)).to_json(),
                           k.LiveUpdateStatus(steps=tuple(steps or ()),
                                              duration=round(time.monotonic() - started, 3),
                                              result=result, error=error).to_json())

    # -- runtime
    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self._observe()
            except ContainerError as exc:
                self._set(RuntimeReport(RuntimeState.UNKNOWN, str(exc), details=self._details))
            await asyncio.sleep(MONITOR_PERIOD_SECONDS)

    async def _observe(self) -> None:
        containers = await self.backend.containers.containers(self.project.project_name,
                                                              self.service)
        for container in containers:
            self._follow(container)
        self._publish_containers(containers)
        if self._disabled:
            self._set(RuntimeReport(RuntimeState.PENDING, "disabled: container removed",
                                    details=self._details))
            return
        for container in containers:
            if container.status in ("exited", "restarting", "dead"):
                self._last_exit[container.id] = container.exit_code
        result = assess(containers, self._baseline, last_exit=self._last_exit)
        alerts = list(result.alerts)
        if result.health == Health.FAILED and self._tail:
            alerts = [f"{alert}\n" + "\n".join(self._tail) for alert in alerts]
        self._details["containers"] = [{
            "name": c.name, "id": c.short_id, "status": c.status, "health": c.health,
            "exitCode": c.exit_code, "restarts": c.restarts, "ports": list(c.ports)}
            for c in containers]
        reason = result.reason
        if result.health != Health.FAILED and containers:
            # The terminal UI shows the reason: name the containers (failures already do).
            reason += f" ({', '.join(c.name for c in containers)})"
        self._set(RuntimeReport(_HEALTH_STATE[result.health], reason, alerts,
                                details=self._details))

    def _follow(self, container: ContainerState) -> None:
        """Stream a container's logs, this run's only; after it restarts, the new run's
        (Docker ends a follow stream when the container stops)."""
        if container.status not in ("running", "restarting", "exited", "dead"):
            return
        started = started_at(container)
        current = self._followers.get(container.id)
        if current is not None and (current[0] == started or container.id not in self._ended):
            return  # this run is being streamed, or the last run's stream is still draining
        self._ended.discard(container.id)
        # A running container's output from the end of its previous run on: exactly this
        # run's lines (StartedAt itself is recorded after the process may have printed), so
        # one found running from an earlier session does not replay its history. A stopped
        # one shows everything, its last words included.
        since = (finished_at(container) or None) if container.status == "running" else None
        prefix = container.name if len(self._deployed_containers) > 1 else ""

        def on_line(text: str) -> None:
            self._tail.append(text)
            self._log(text, "runtime", prefix)

        def on_end(container_id: str = container.id) -> None:
            self._ended.add(container_id)

        self._followers[container.id] = (started, self.backend.containers.follow_logs(
            container.id, since, on_line, on_end))

    def _publish_containers(self, containers: list[ContainerState]) -> None:
        names = set()
        for container in containers:
            names.add(container.name)
            self.hooks.publish(CONTAINER_KIND, container.name, k.ContainerSpec(
                resource=self.name, project=self.project.project_name,
                service=self.service).to_json(), k.ContainerStatus(
                id=container.short_id, status=container.status, health=container.health,
                exit_code=container.exit_code, restarts=container.restarts,
                ports=container.ports, started_at=container.started_at).to_json())
        for gone in self._published - names:
            self.hooks.delete(CONTAINER_KIND, gone)
        self._published = names

    def _set(self, report: RuntimeReport) -> None:
        changed = (report.state, report.reason, report.alerts) != (
            self._report.state, self._report.reason, self._report.alerts)
        self._report = report
        if changed:
            self.hooks.changed()

    def runtime(self) -> RuntimeReport:
        return self._report

    # -- enable / disable / stop
    def on_disabled(self) -> None:
        """Disabling the resource removes the service's container (as Tilt does)."""
        self._disabled = True
        self._deployed = {}
        self._disable_task = spawn(self._remove(), name=f"compose-rm:{self.name}",
                                   resource=self.name,
                                   on_error=resource_reporter(self.hooks, self.name))

    async def _remove(self) -> None:
        try:
            await self.backend.cli.remove([self.service], log=self._log)
        except ComposeError as exc:
            self._log(f"ERROR: {exc}")
        self.hooks.changed()

    async def stop(self) -> None:
        """Stop watching; the containers keep running (like Tilt, `down` removes them)."""
        await cancel_and_wait(self._monitor)
        for _, cancel in self._followers.values():
            cancel()
        self._followers.clear()
        if self._disable_task is not None:
            with contextlib.suppress(Exception):
                await self._disable_task


def _excluded(is_input: Callable[[str], bool], path: str) -> bool:
    """What the image's ignore rules leave out of the archive: what is not an input."""
    return not is_input(path)


def make_runner(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> ResourceRunner:
    """The runner of a Compose service (see `runner_registry`)."""
    if plan.compose is None:
        raise UpdateError(f"resource {resource.name}: no docker_compose() project")
    return ComposeRunner(resource, plan=plan, hooks=context.hooks,
                         backend=backend_for(plan, plan_environment(plan)))


async def compose_down(plan: p.Plan, *, volumes: bool, say: Callable[[str], None]) -> None:
    """`devloop down` of the Compose project: `docker compose down`, named volumes kept
    unless `volumes`."""
    if plan.compose is None:
        return
    if not volumes:
        say("Keeping Compose volumes (use --volumes to remove them)")
    cli = ComposeCli(plan.compose, environ=plan_environment(plan))
    try:
        await cli.down(volumes=volumes, log=say)
    except ComposeError as exc:
        raise UpdateError(str(exc)) from None


async def tear_down_plan(plan: p.Plan, context: TeardownContext,
                         say: Callable[[str], None]) -> bool:
    """`devloop down` of the plan's Compose project, if it has one (see `compose_down`):
    whether it had one. Its services have no teardown of their own."""
    if plan.compose is None:
        return False
    await compose_down(plan, volumes=context.volumes, say=say)
    return True
