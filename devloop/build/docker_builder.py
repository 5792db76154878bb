"""docker_build images with the Docker engine, and push them: the async seam over the docker SDK.

The docker SDK blocks, so every call runs in a worker thread; output lines are handed to the
caller's `log` on the event loop with `call_soon_threadsafe`, as they arrive.

Tagging follows Tilt: after a build the image is tagged `<repo>:devloop-<first 16 hex of the
image ID>` (Tilt's `tilt-<hash>`), so the tag depends on the built image's content and an
identical rebuild gives the same tag. `<repo>` is the image's name in the registry when one
is known (see `registry.py`). The low-level API uses the engine's classic builder: `ssh=` and
`secret=` need BuildKit and are refused with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import docker
import docker.errors

from devloop.build import registry as reg
from devloop.build.context import make_build_context
from devloop.tiltfile import plan

TAG_PREFIX = "devloop-"
# How many lines of a failed build's output an error carries when no step marker is found.
FALLBACK_TAIL_LINES = 40

LogFn = Callable[[str], None]


class BuildError(Exception):
    """A build (or push) failed; `log_tail` is the failing step's output."""

    def __init__(self, message: str, log_tail: str = "", *, temporary: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.log_tail = log_tail
        self.temporary = temporary

    def __str__(self) -> str:
        return f"{self.message}\n{self.log_tail}" if self.log_tail else self.message


class PushError(BuildError):
    """Pushing an image to the registry failed."""


@dataclass(frozen=True)
class BuiltImage:
    """A build result: `ref` is `repo:tag` (the pushed ref once pushed)."""

    ref: str
    image_id: str
    repo: str
    tag: str


class ImageBuilder(Protocol):
    """The build seam the engine uses (a fake implements the same methods)."""

    async def build(self, target: plan.DockerBuild, *, log: LogFn,
                    registry: reg.Registry | None = None) -> BuiltImage: ...

    async def push(self, image: BuiltImage, registry: reg.Registry | None = None, *,
                   log: LogFn | None = None) -> str: ...


def content_tag(image_id: str) -> str:
    """`devloop-<first 16 hex chars of the image ID>`."""
    return TAG_PREFIX + image_id.removeprefix("sha256:")[:16]


def default_api_client() -> docker.APIClient:
    """An APIClient for the engine named by DOCKER_HOST & co. (blocking: call in a thread).

    No read timeout: a build step may print nothing for minutes."""
    kwargs = docker.utils.kwargs_from_env()
    return docker.APIClient(version="auto", timeout=None, **kwargs)


class _LineSplitter:
    """Reassembles lines from the engine's `stream` chunks, which need not end at newlines."""

    def __init__(self, emit: Callable[[str], None]) -> None:
        self._emit = emit
        self._partial = ""

    def feed(self, chunk: str) -> None:
        text = self._partial + chunk
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._emit(line.rstrip("\r"))

    def flush(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = ""


class DockerBuilder:
    """Builds `plan.DockerBuild` targets and pushes images through the docker SDK."""

    def __init__(self, api_factory: Callable[[], docker.APIClient] = default_api_client) -> None:
        self._api_factory = api_factory
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> docker.APIClient:
        with self._lock:
            if self._api is None:
                try:
                    self._api = self._api_factory()
                except docker.errors.DockerException as e:
                    raise BuildError(f"cannot reach the Docker engine: {e}",
                                     temporary=True) from e
            return self._api

    async def build(self, target: plan.DockerBuild, *, log: LogFn,
                    registry: reg.Registry | None = None) -> BuiltImage:
        """Build `target`, streaming the engine's output to `log`, and tag the image with its
        content tag under the image's (registry) name; also apply `extra_tag`s."""
        if target.ssh or target.secret:
            raise BuildError(f"docker_build {target.ref!r}: ssh= and secret= need BuildKit, "
                             "which this builder does not use")
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def emit(line: str) -> None:
            loop.call_soon_threadsafe(log, line)

        try:
            return await asyncio.to_thread(self._build_blocking, target, registry, emit, cancelled)
        finally:
            # If we were cancelled the worker stops reading at its next chunk, which closes
            # the connection and makes the engine abandon the build.
            cancelled.set()

    def _build_blocking(self, target: plan.DockerBuild, registry: reg.Registry | None,
                        emit: LogFn, cancelled: threading.Event) -> BuiltImage:
        api = self._client()
        try:
            ctx = make_build_context(target)
        except OSError as e:
            raise BuildError(f"docker_build {target.ref!r}: {e}") from e
        try:
            image_id = self._run_build(api, target, ctx.tar, ctx.dockerfile, emit, cancelled)
        finally:
            ctx.close()
        repo = reg.local_name(target.ref, registry)
        tag = reg.tag_for(target.ref, content_tag(image_id), registry)
        try:
            api.tag(image_id, repo, tag)
            for extra in target.extra_tag:
                parsed = reg.parse_ref(extra)
                api.tag(image_id, parsed.name, parsed.tag or "latest")
        except docker.errors.APIError as e:
            raise BuildError(f"tagging {repo}:{tag}: {e.explanation or e}") from e
        return BuiltImage(ref=f"{repo}:{tag}", image_id=image_id, repo=repo, tag=tag)

    def _run_build(self, api: docker.APIClient, target: plan.DockerBuild, tar: Any,
                   dockerfile: str, emit: LogFn, cancelled: threading.Event) -> str:
        step_lines: list[str] = []
        image_id = ""
        short_id = ""

        def line_out(line: str) -> None:
            nonlocal short_id
            if line.startswith("Step "):
                step_lines.clear()
            step_lines.append(line)
            if line.startswith("Successfully built "):
                short_id = line.split()[-1]
            emit(line)

        splitter = _LineSplitter(line_out)
        try:
            stream: Iterator[dict[str, Any]] = api.build(
                fileobj=tar,
                custom_context=True,
                dockerfile=dockerfile,
                decode=True,
                rm=True,
                forcerm=True,
                pull=target.pull,
                buildargs=dict(target.build_args) or None,
                target=target.target or None,
                network_mode=target.network or None,
                cache_from=list(target.cache_from) or None,
                platform=target.platform or None,
            )
            for item in stream:
                if cancelled.is_set():
                    with contextlib.suppress(Exception):
                        stream.close()  # type: ignore[attr-defined]
                    raise BuildError(f"docker_build {target.ref!r}: cancelled")
                if "stream" in item:
                    splitter.feed(str(item["stream"]))
                elif "status" in item:
                    splitter.feed(str(item["status"]) + "\n")
                if isinstance(item.get("aux"), dict) and item["aux"].get("ID"):
                    image_id = str(item["aux"]["ID"])
                if "error" in item:
                    splitter.flush()
                    message = str(item.get("errorDetail", {}).get("message") or item["error"])
                    tail = step_lines or []
                    raise BuildError(f"docker_build {target.ref!r} failed: {message.strip()}",
                                     "\n".join(tail[-FALLBACK_TAIL_LINES:]))
            splitter.flush()
        except docker.errors.APIError as e:
            raise BuildError(f"docker_build {target.ref!r} failed: {e.explanation or e}",
                             "\n".join(step_lines[-FALLBACK_TAIL_LINES:])) from e
        except docker.errors.DockerException as e:
            raise BuildError(f"docker_build {target.ref!r}: Docker engine error: {e}",
                             temporary=True) from e
        except OSError as e:  # the connection dropped mid-build
            raise BuildError(f"docker_build {target.ref!r}: connection to the Docker engine "
                             f"lost: {e}", temporary=True) from e
        if not image_id and short_id:
            image_id = str(api.inspect_image(short_id)["Id"])
        if not image_id:
            raise BuildError(f"docker_build {target.ref!r}: the engine reported no image ID",
                             "\n".join(step_lines[-FALLBACK_TAIL_LINES:]))
        return image_id

    async def image_id(self, ref: str) -> str | None:
        """The ID of a local image, or None when the engine has no such image."""

        def inspect() -> str | None:
            try:
                return str(self._client().inspect_image(ref)["Id"])
            except docker.errors.ImageNotFound:
                return None
            except docker.errors.APIError as e:
                raise BuildError(f"inspecting image {ref}: {e.explanation or e}") from e

        return await asyncio.to_thread(inspect)

    async def tag(self, image_id: str, repo: str, tag: str) -> None:
        def do_tag() -> None:
            try:
                self._client().tag(image_id, repo, tag)
            except docker.errors.APIError as e:
                raise BuildError(f"tagging {repo}:{tag}: {e.explanation or e}") from e

        await asyncio.to_thread(do_tag)

    async def push(self, image: BuiltImage, registry: reg.Registry | None = None, *,
                   log: LogFn | None = None) -> str:
        """Push `image` and return the pushed ref. When `registry` is given and the image is
        not named into it yet, it is first tagged `<registry>/<escaped name>:<tag>`."""
        loop = asyncio.get_running_loop()

        def emit(line: str) -> None:
            if log is not None:
                loop.call_soon_threadsafe(log, line)

        return await asyncio.to_thread(self._push_blocking, image, registry, emit)

    def _push_blocking(self, image: BuiltImage, registry: reg.Registry | None,
                       emit: LogFn) -> str:
        api = self._client()
        repo = reg.local_name(image.repo, registry) if registry else image.repo
        ref = f"{repo}:{image.tag}"
        last_status: dict[str, str] = {}
        try:
            if repo != image.repo:
                api.tag(image.image_id, repo, image.tag)
            for item in api.push(repo, tag=image.tag, stream=True, decode=True):
                if "error" in item:
                    message = str(item.get("errorDetail", {}).get("message") or item["error"])
                    raise PushError(f"pushing {ref} failed: {message}")
                status = str(item.get("status", ""))
                layer = str(item.get("id", ""))
                # Progress ticks repeat the same status many times a second; log changes only.
                if status and last_status.get(layer) != status:
                    last_status[layer] = status
                    emit(f"{layer}: {status}" if layer else status)
        except docker.errors.APIError as e:
            raise PushError(f"pushing {ref} failed: {e.explanation or e}") from e
        except (docker.errors.DockerException, OSError) as e:
            raise PushError(f"pushing {ref}: connection to the Docker engine lost: {e}",
                            temporary=True) from e
        return ref
