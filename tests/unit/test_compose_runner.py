"""The Compose runner against fakes of the CLI, the Docker API and the builder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from devloop.build.docker_builder import BuiltImage
from devloop.compose.containers import ContainerState, ExecOutput
from devloop.engine import compose_runner as cr
from devloop.engine.runner import RunnerHooks, UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.model import plan as p


@dataclass
class FakeCli:
    calls: list[tuple[str, ...]] = field(default_factory=list)
    on_up: Callable[[str], None] = lambda service: None
    fail_up: str = ""

    async def up(self, service: str, *, log: Any) -> None:
        self.calls.append(("up", service))
        if self.fail_up:
            from devloop.compose.cli import ComposeError
            raise ComposeError(self.fail_up)
        self.on_up(service)

    async def build(self, service: str, *, log: Any) -> None:
        self.calls.append(("build", service))

    async def remove(self, services: list[str], *, log: Any) -> None:
        self.calls.append(("rm", *services))

    async def config(self) -> dict[str, Any]:
        return {"services": {"web": {"image": "app", "ports": [{"target": 8000}]}}}


@dataclass
class FakeContainers:
    states: list[ContainerState] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    followers: list[tuple[str, float | None]] = field(default_factory=list)
    exec_code: int = 0
    log_lines: list[str] = field(default_factory=list)

    async def containers(self, project: str, service: str) -> list[ContainerState]:
        return list(self.states)

    def follow_logs(self, container_id: str, since: float | None, on_line: Any,
                    on_end: Any) -> Callable[[], None]:
        self.followers.append((container_id, since))
        for line in self.log_lines:
            on_line(line)
        return lambda: None

    async def put_archive(self, container_id: str, data: bytes) -> None:
        self.calls.append(("put_archive", container_id, len(data)))

    async def exec(self, container_id: str, argv: list[str]) -> ExecOutput:
        self.calls.append(("exec", container_id, *argv))
        return ExecOutput(self.exec_code, "step output\n")

    async def restart(self, container_id: str) -> None:
        self.calls.append(("restart", container_id))

    async def tag(self, image: str, target: str) -> None:
        self.calls.append(("tag", image, target))


@dataclass
class FakeBuilder:
    builds: list[str] = field(default_factory=list)

    async def build(self, target: p.DockerBuild, *, log: Any, registry: Any = None
                    ) -> BuiltImage:
        self.builds.append(target.ref)
        image_id = f"sha256:{len(self.builds):064d}"
        return BuiltImage(f"{target.ref}:devloop-{len(self.builds)}", image_id, target.ref,
                          "t")

    async def image_id(self, ref: str) -> str | None:
        return "sha256:compose-built"


def running(cid: str = "c1", *, health: str = "", restarts: int = 0, status: str = "running",
            exit_code: int = 0, started: str = "2026-01-01T00:00:00Z",
            finished: str = "0001-01-01T00:00:00Z") -> ContainerState:
    return ContainerState(id=cid, name=f"proj-web-{cid}", image="sha256:1", status=status,
                          health=health, restarts=restarts, exit_code=exit_code,
                          started_at=started, finished_at=finished)


@dataclass
class Harness:
    runner: cr.ComposeRunner
    cli: FakeCli
    containers: FakeContainers
    builder: FakeBuilder
    logs: list[tuple[str, str]]
    objects: dict[tuple[str, str], dict[str, Any]]


def make(tmp_path: Path, *, live_update: tuple[p.LiveUpdateStep, ...] = (),
         compose_build: bool = False) -> Harness:
    (tmp_path / "web").mkdir(exist_ok=True)
    (tmp_path / "web" / "app.py").write_text("print('v1')\n")
    (tmp_path / "web" / "Dockerfile").write_text("FROM scratch\n")
    if compose_build:
        image: p.ImageTarget = p.DockerBuild(ref="proj_web", context=str(tmp_path / "web"),
                                             dockerfile=str(tmp_path / "web/Dockerfile"),
                                             kind=cr.COMPOSE_BUILD_KIND)
    else:
        image = p.DockerBuild(ref="app", context=str(tmp_path / "web"),
                              dockerfile=str(tmp_path / "web/Dockerfile"),
                              live_update=live_update)
    project = p.ComposeProject(config_paths=(str(tmp_path / "compose.yaml"),),
                               project_name="proj", project_dir=str(tmp_path),
                               services_json=json.dumps({"web": {} if compose_build
                                                         else {"image": "app"}}))
    resource = p.Resource(name="web", type=p.ResourceType.COMPOSE, image_refs=(image.ref,),
                          compose_service="web")
    plan = p.Plan(tiltfile=str(tmp_path / "Tiltfile"), resources=(resource,), images=(image,),
                  compose=project)
    cli, containers, builder = FakeCli(), FakeContainers(), FakeBuilder()
    logs: list[tuple[str, str]] = []
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    hooks = RunnerHooks(log=lambda res, text, source, prefix: logs.append((source, text)),
                        changed=lambda: None,
                        publish=lambda kind, name, spec, status: objects.__setitem__(
                            (kind, name), {"spec": spec, "status": status}),
                        delete=lambda kind, name: objects.pop((kind, name), None))
    backend = cr.ComposeBackend(project, environ={}, cli=cli, containers=containers,  # type: ignore[arg-type]
                                builder=builder)
    runner = cr.ComposeRunner(resource, plan=plan, hooks=hooks, backend=backend)
    return Harness(runner, cli, containers, builder, logs, objects)


async def settle(h: Harness) -> None:
    await h.runner._observe()


def test_update_builds_tags_for_compose_and_runs_up(tmp_path):
    h = make(tmp_path)
    h.containers.states = [running()]

    async def go() -> None:
        await h.runner.update(())
        await settle(h)
        await h.runner.stop()

    asyncio.run(go())
    assert h.builder.builds == ["app"]
    assert ("tag", f"sha256:{1:064d}", "app") in h.containers.calls
    assert h.cli.calls == [("up", "web")]
    report = h.runner.runtime()
    assert (report.state, report.reason) == (RuntimeState.OK, "running (proj-web-c1)")
    assert "image: app" in str(report.details["composeConfig"])
    assert h.objects[("container", "proj-web-c1")]["status"]["status"] == "running"


def test_a_build_section_is_built_by_compose(tmp_path):
    h = make(tmp_path, compose_build=True)
    h.containers.states = [running()]

    async def go() -> None:
        await h.runner.update(())
        await h.runner.stop()

    asyncio.run(go())
    assert h.cli.calls == [("build", "web"), ("up", "web")]
    assert h.builder.builds == []


def test_healthcheck_gates_readiness(tmp_path):
    h = make(tmp_path)
    h.containers.states = [running(health="starting")]

    async def go() -> list[RuntimeState]:
        await h.runner.update(())
        await settle(h)
        first = h.runner.runtime().state
        h.containers.states = [running(health="healthy")]
        await settle(h)
        await h.runner.stop()
        return [first, h.runner.runtime().state]

    assert asyncio.run(go()) == [RuntimeState.PENDING, RuntimeState.OK]


def test_a_crashed_service_is_an_error_with_its_last_log_lines(tmp_path):
    h = make(tmp_path)
    h.containers.states = [running(status="exited", exit_code=3)]
    h.containers.log_lines = ["starting", "Traceback: boom"]

    async def go() -> None:
        await h.runner.update(())
        await settle(h)
        await h.runner.stop()

    asyncio.run(go())
    report = h.runner.runtime()
    assert report.state == RuntimeState.ERROR
    assert report.alerts == ["container proj-web-c1 exited with code 3\nstarting\nTraceback: boom"]
    assert ("runtime", "Traceback: boom") in h.logs


def test_logs_are_followed_again_from_the_start_of_a_restarted_run(tmp_path):
    h = make(tmp_path)
    h.containers.states = [running()]

    async def go() -> None:
        await h.runner.update(())
        await settle(h)
        await settle(h)  # same run: no second stream
        h.runner._ended.add("c1")  # Docker ended the stream when the container stopped
        h.containers.states = [running(restarts=1, started="2026-01-01T00:01:00.250Z",
                                       finished="2026-01-01T00:00:59.5Z")]
        await settle(h)
        await h.runner.stop()

    asyncio.run(go())
    # The first run from its beginning; the second from the end of the first.
    assert h.containers.followers == [("c1", None), ("c1", 1767225659.5)]
    assert h.runner.runtime().alerts == [
        "container proj-web-c1 restarted 1 time"]


def test_up_failure_is_an_update_error(tmp_path):
    h = make(tmp_path)
    h.cli.fail_up = "`docker compose up` failed with exit code 1:\nno such image"
    with pytest.raises(UpdateError, match="no such image"):
        asyncio.run(h.runner.update(()))


LIVE = (p.FallBackOnStep(("web/Dockerfile",)), p.SyncStep("web", "/app"),
        p.RunStep(("sh", "-c", "echo synced"), shell=True), p.RestartContainerStep())


def test_a_saved_file_is_synced_run_and_the_container_restarted(tmp_path):
    h = make(tmp_path, live_update=tuple(
        replace(s, local_path=str(tmp_path / "web")) if isinstance(s, p.SyncStep) else
        replace(s, paths=(str(tmp_path / "web/Dockerfile"),))
        if isinstance(s, p.FallBackOnStep) else s for s in LIVE))
    h.containers.states = [running()]
    changed = str(tmp_path / "web" / "app.py")

    async def go() -> None:
        await h.runner.update(())
        h.containers.calls.clear()
        (tmp_path / "web" / "app.py").write_text("print('v2')\n")
        await h.runner.update((changed,))
        await h.runner.stop()

    asyncio.run(go())
    kinds = [call[0] for call in h.containers.calls]
    assert kinds == ["put_archive", "exec", "restart"]
    assert h.containers.calls[1] == ("exec", "c1", "sh", "-c", "echo synced")
    assert h.cli.calls == [("up", "web")]  # no second up
    assert h.builder.builds == ["app"]
    updates = [o for (kind, _), o in h.objects.items() if kind == "liveupdate"]
    assert updates[-1]["status"]["result"] == "ok"


def test_fall_back_on_rebuilds(tmp_path):
    h = make(tmp_path, live_update=(p.FallBackOnStep((str(tmp_path / "web/Dockerfile"),)),
                                    p.SyncStep(str(tmp_path / "web"), "/app")))
    h.containers.states = [running()]

    async def go() -> None:
        await h.runner.update(())
        await h.runner.update((str(tmp_path / "web/Dockerfile"),))
        await h.runner.stop()

    asyncio.run(go())
    assert h.builder.builds == ["app", "app"]
    assert h.cli.calls == [("up", "web"), ("up", "web")]
    assert not [c for c in h.containers.calls if c[0] == "put_archive"]


def test_a_failing_run_step_fails_the_update_without_rebuilding(tmp_path):
    h = make(tmp_path, live_update=(p.SyncStep(str(tmp_path / "web"), "/app"),
                                    p.RunStep(("false",), shell=False)))
    h.containers.states = [running()]
    h.containers.exec_code = 1

    async def go() -> None:
        await h.runner.update(())
        try:
            await h.runner.update((str(tmp_path / "web/app.py"),))
        finally:
            await h.runner.stop()

    with pytest.raises(UpdateError, match="`false` failed in c1 with exit code 1"):
        asyncio.run(go())
    assert h.builder.builds == ["app"]


def test_a_recreated_container_gets_a_rebuild_not_a_sync(tmp_path):
    h = make(tmp_path, live_update=(p.SyncStep(str(tmp_path / "web"), "/app"),))
    h.containers.states = [running("c1")]

    async def go() -> None:
        await h.runner.update(())
        h.containers.states = [running("c2")]
        await h.runner.update((str(tmp_path / "web/app.py"),))
        await h.runner.stop()

    asyncio.run(go())
    assert h.builder.builds == ["app", "app"]


def test_disabling_removes_the_container(tmp_path):
    h = make(tmp_path)
    h.containers.states = [running()]

    async def go() -> None:
        await h.runner.update(())
        h.runner.on_disabled()
        h.containers.states = []
        await settle(h)
        await h.runner.stop()

    asyncio.run(go())
    assert h.cli.calls == [("up", "web"), ("rm", "web")]
    assert h.runner.runtime().reason == "disabled: container removed"
