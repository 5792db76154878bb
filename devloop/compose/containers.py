"""A Compose service's containers through the Docker API: find, inspect, logs, copy, exec, restart.

The docker SDK blocks, so every call runs in a worker thread; a log stream runs in its own
thread and hands lines to the loop with `call_soon_threadsafe`. Containers are found by the
labels Compose puts on them (`com.docker.compose.project` and `.service`), which is what
`docker compose ps` reads too, without a process per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import docker
import docker.errors

from devloop.build.docker_builder import default_api_client

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
NUMBER_LABEL = "com.docker.compose.container-number"


class ContainerError(Exception):
    """The Docker API refused or failed a call about a container."""


@dataclass(frozen=True)
class ContainerState:
    """What a person needs to know about one container, from `docker inspect`."""

    id: str
    name: str
    image: str  # the image ID the container runs
    status: str  # created, running, restarting, exited, paused, dead
    exit_code: int = 0
    health: str = ""  # "", starting, healthy, unhealthy
    health_log: str = ""  # the last healthcheck's output
    restarts: int = 0
    started_at: str = ""
    finished_at: str = ""  # while running: when the previous run ended ("0001-..." if none)
    error: str = ""
    ports: tuple[str, ...] = field(default=())  # "127.0.0.1:8080->80/tcp"

    @property
    def short_id(self) -> str:
        return self.id[:12]


@dataclass(frozen=True)
class ExecOutput:
    exit_code: int
    output: str


def started_at(state: ContainerState) -> float:
    """When the container's current run started, as unix seconds (0 when never)."""
    return _unix(state.started_at)


def finished_at(state: ContainerState) -> float:
    """When the container's last run ended, as unix seconds (0 when never)."""
    return _unix(state.finished_at)


def _unix(text: str) -> float:
    if not text or text.startswith("0001-"):
        return 0.0
    main, _, fraction = text.rstrip("Z").partition(".")
    try:
        seconds = datetime.fromisoformat(main + "+00:00").timestamp()
    except ValueError:
        return 0.0
    return seconds + float(f"0.{fraction[:6] or 0}")


def state_of(inspected: dict[str, Any]) -> ContainerState:
    """A ContainerState from the Docker API's inspect document."""
    state = inspected.get("State") or {}
    health = state.get("Health") or {}
    checks = health.get("Log") or []
    last_check = str(checks[-1].get("Output", "")).strip() if checks else ""
    ports: list[str] = []
    for container_port, bindings in sorted(((inspected.get("NetworkSettings") or {})
                                            .get("Ports") or {}).items()):
        for binding in bindings or []:
            host = binding.get("HostIp") or "0.0.0.0"  # noqa: S104 - shown, never bound
            ports.append(f"{host}:{binding.get('HostPort')}->{container_port}")
    return ContainerState(
        id=str(inspected.get("Id", "")), name=str(inspected.get("Name", "")).lstrip("/"),
        image=str(inspected.get("Image", "")), status=str(state.get("Status", "")),
        exit_code=int(state.get("ExitCode") or 0), health=str(health.get("Status", "")),
        health_log=last_check, restarts=int(inspected.get("RestartCount") or 0),
        started_at=str(state.get("StartedAt", "")),
        finished_at=str(state.get("FinishedAt", "")), error=str(state.get("Error", "")),
        ports=tuple(ports))


class ContainerApi(Protocol):
    """The container calls the Compose runner makes (a fake implements the same)."""

    async def containers(self, project: str, service: str) -> list[ContainerState]: ...

    def follow_logs(self, container_id: str, since: float | None,
                    on_line: Callable[[str], None],
                    on_end: Callable[[], None]) -> Callable[[], None]: ...

    async def put_archive(self, container_id: str, data: bytes) -> None: ...

    async def exec(self, container_id: str, argv: list[str]) -> ExecOutput: ...

    async def restart(self, container_id: str) -> None: ...


class DockerContainers:
    """ContainerApi over the docker SDK's low-level client."""

    def __init__(self, api_factory: Callable[[], docker.APIClient] = default_api_client
                 ) -> None:
        self._api_factory = api_factory
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> docker.APIClient:
        with self._lock:
            if self._api is None:
                try:
                    self._api = self._api_factory()
                except docker.errors.DockerException as exc:
                    raise ContainerError(f"cannot reach the Docker engine: {exc}") from exc
            return self._api

    async def containers(self, project: str, service: str) -> list[ContainerState]:
        """The service's containers (stopped ones too), by container number."""

        def find() -> list[ContainerState]:
            api = self._client()
            try:
                listed = api.containers(all=True, filters={"label": [
                    f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]})
                found: list[tuple[int, ContainerState]] = []
                for item in listed:
                    labels = item.get("Labels") or {}
                    number = int(labels.get(NUMBER_LABEL) or 0)
                    try:
                        found.append((number, state_of(api.inspect_container(item["Id"]))))
                    except docker.errors.NotFound:
                        continue  # removed between the list and the inspect
            except docker.errors.APIError as exc:
                raise ContainerError(f"listing containers of {service}: "
                                     f"{exc.explanation or exc}") from exc
            return [state for _, state in sorted(found, key=lambda item: item[0])]

        return await asyncio.to_thread(find)

    def follow_logs(self, container_id: str, since: float | None,
                    on_line: Callable[[str], None],
                    on_end: Callable[[], None]) -> Callable[[], None]:
        """Stream the container's output from `since` (unix seconds, None = all) until it
        stops;
        `on_line`/`on_end` are called on the caller's loop. Returns a function that stops it."""
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        holder: list[Any] = []

        def pump() -> None:
            partial = b""
            try:
                stream = self._client().logs(container_id, stream=True, follow=True,
                                             stdout=True, stderr=True, since=since)
                holder.append(stream)
                for chunk in stream:
                    if stop.is_set():
                        break
                    partial += chunk
                    *lines, partial = partial.split(b"\n")
                    for line in lines:
                        text = line.decode(errors="replace").rstrip("\r")
                        loop.call_soon_threadsafe(on_line, text)
            except Exception:  # noqa: BLE001 - a broken stream ends like a finished one
                pass
            finally:
                if partial and not stop.is_set():
                    loop.call_soon_threadsafe(on_line, partial.decode(errors="replace"))
                if not stop.is_set():
                    with contextlib.suppress(RuntimeError):  # the loop may be closed
                        loop.call_soon_threadsafe(on_end)

        thread = threading.Thread(target=pump, name=f"compose-logs-{container_id[:12]}",
                                  daemon=True)
        thread.start()

        def cancel() -> None:
            stop.set()
            for stream in holder:
                with contextlib.suppress(Exception):
                    stream.close()

        return cancel

    async def put_archive(self, container_id: str, data: bytes) -> None:
        """Extract a tar (paths relative to /) into the container's filesystem."""

        def put() -> None:
            try:
                ok = self._client().put_archive(container_id, "/", data)
            except docker.errors.APIError as exc:
                raise ContainerError(f"copying files into {container_id[:12]}: "
                                     f"{exc.explanation or exc}") from exc
            if not ok:
                raise ContainerError(f"copying files into {container_id[:12]} was refused")

        await asyncio.to_thread(put)

    async def exec(self, container_id: str, argv: list[str]) -> ExecOutput:
        def run() -> ExecOutput:
            api = self._client()
            try:
                created = api.exec_create(container_id, argv, stdout=True, stderr=True)
                output = api.exec_start(created["Id"])
                code = api.exec_inspect(created["Id"]).get("ExitCode")
            except docker.errors.APIError as exc:
                raise ContainerError(f"exec in {container_id[:12]}: "
                                     f"{exc.explanation or exc}") from exc
            text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
            return ExecOutput(int(code if code is not None else -1), text)

        return await asyncio.to_thread(run)

    async def restart(self, container_id: str) -> None:
        """Restart at once, as Tilt does (no grace period: the container's files persist and
        a live update should not wait ten seconds for a PID 1 that ignores SIGTERM)."""

        def restart() -> None:
            try:
                self._client().restart(container_id, timeout=0)
            except docker.errors.APIError as exc:
                raise ContainerError(f"restarting {container_id[:12]}: "
                                     f"{exc.explanation or exc}") from exc

        await asyncio.to_thread(restart)

    async def tag(self, image: str, target: str) -> None:
        """Give an image the name Compose looks for (repo[:tag], default tag latest)."""
        repo, _, tag = target.rpartition(":") if ":" in target.split("/")[-1] else (
            target, "", "latest")

        def do_tag() -> None:
            try:
                self._client().tag(image, repo, tag or "latest")
            except docker.errors.APIError as exc:
                raise ContainerError(f"tagging {target}: {exc.explanation or exc}") from exc

        await asyncio.to_thread(do_tag)
