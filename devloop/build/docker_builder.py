"""docker_build images with the Docker engine, and push them: the build seam the engine uses.

Which builder: BuildKit through `docker buildx build` (see `buildkit.py`) whenever the
docker CLI has the buildx plugin, as Docker users build; the engine's legacy builder through
the docker SDK otherwise, or when `DOCKER_BUILDKIT=0` asks for it (as it does for `docker
build`). The first line of every build's log says which one runs. The legacy builder cannot
build `RUN --mount`, `# syntax=`, heredocs, `COPY --chmod/--link`, `secret=` or `ssh=`: such
a build fails at once with the Dockerfile line and how to get BuildKit.

The docker SDK blocks, so every call runs in a worker thread; output lines are handed to the
caller's `log` on the event loop with `call_soon_threadsafe`, as they arrive.

Tagging follows Tilt: after a build the image is tagged `<repo>:devloop-<first 16 hex of the
image ID>` (Tilt's `tilt-<hash>`), so the tag depends on the built image's content and an
identical rebuild gives the same tag. `<repo>` is the image's name in the registry when one
is known (see `registry.py`). Pushes go through the engine, which has the image already.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devloop.build import build_errors, buildkit
from devloop.build import registry as reg
from devloop.build.context import buildkit_ignore_patterns, dockerfile_source, make_build_context
from devloop.model import plan
from devloop.model.dockerfile import parse as parse_dockerfile

if TYPE_CHECKING:
    import docker

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


def content_tag(image_id: str) -> str:
    """`devloop-<first 16 hex chars of the image ID>`."""
    return TAG_PREFIX + image_id.removeprefix("sha256:")[:16]


def default_api_client() -> docker.APIClient:
    """An APIClient for the engine named by DOCKER_HOST & co. (blocking: call in a thread).

    No read timeout: a build step may print nothing for minutes.

    The docker SDK is imported here and in the functions that catch its errors, not with
    this module: it and `requests` under it cost the daemon about 5 MiB and 80 ms of its
    start, and a session that builds no image (only published images, only local
    resources) never needs them. `import` holds the import lock, so threads may race to it."""
    import docker
    from docker.utils import kwargs_from_env

    kwargs = kwargs_from_env()
    return docker.APIClient(version="auto", timeout=None, **kwargs)  # type: ignore[arg-type]


def _write_dockerfile_dir(target: plan.DockerBuild, path: str, dockerfile: bytes) -> None:
    """The Dockerfile and its ignore file, for a build that reads the context directory."""
    with open(path, "wb") as f:
        f.write(dockerfile)
    with open(path + ".dockerignore", "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in buildkit_ignore_patterns(target)))


def _extra_hosts(entries: tuple[str, ...]) -> dict[str, str]:
    """`host:ip` entries (docker's --add-host form) as the SDK's mapping."""
    hosts: dict[str, str] = {}
    for entry in entries:
        host, sep, ip = entry.partition(":")
        if not sep:
            host, sep, ip = entry.partition("=")
        if sep:
            hosts[host] = ip
    return hosts


def _legacy_error(target: plan.DockerBuild, message: str, step_lines: list[str]) -> BuildError:
    """A failed legacy build: a failing FROM step gets the base image message (its step
    line is in the log already, so it is not repeated after the error)."""
    image = build_errors.image_from_failure(step_lines[0] if step_lines else "", message)
    if image:
        return BuildError(build_errors.missing_base_image_message(target, image, message))
    return BuildError(f"docker_build {target.ref!r} failed: {message.strip()}",
                      "\n".join(step_lines[-FALLBACK_TAIL_LINES:]))


def _buildkit_error(target: plan.DockerBuild, failure: buildkit.BuildxFailed) -> BuildError:
    failed = failure.renderer.failed
    message = failure.message
    image = build_errors.image_from_failure(failed.name, failed.error) if failed else None
    if image and failed:
        # The step's own error is the short form of buildx's rpc-wrapped closing line.
        return BuildError(build_errors.missing_base_image_message(target, image, failed.error))
    tail = "\n".join(failed.tail) if failed else ""
    return BuildError(f"docker_build {target.ref!r} failed: {message}", tail)


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


class BuilderKind(enum.Enum):
    BUILDKIT = "buildkit"
    LEGACY = "legacy"


def buildkit_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """`DOCKER_BUILDKIT=0` (or false) selects the legacy builder, as it does for `docker build`."""
    value = (os.environ if environ is None else environ).get("DOCKER_BUILDKIT", "")
    return value.strip().lower() in ("0", "false", "no", "off")


_STEP = re.compile(r"^Step \d+/\d+ : ")


class DockerBuilder:
    """Builds `plan.DockerBuild` targets (BuildKit, else the SDK) and pushes through the SDK."""

    def __init__(self, api_factory: Callable[[], docker.APIClient] = default_api_client, *,
                 kind: BuilderKind | None = None, docker_cli: str = buildkit.DOCKER) -> None:
        self._api_factory = api_factory
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()
        self._kind = kind
        self._docker_cli = docker_cli
        self._buildx: buildkit.BuildxInfo | None = None
        self._why_legacy = ""
        self._chosen = asyncio.Lock()

    def _client(self) -> docker.APIClient:
        import docker.errors  # loaded on first use: see default_api_client

        with self._lock:
            if self._api is None:
                try:
                    self._api = self._api_factory()
                except docker.errors.DockerException as e:
                    raise BuildError(f"cannot reach the Docker engine: {e}",
                                     temporary=True) from e
            return self._api

    async def builder_kind(self) -> BuilderKind:
        """Which builder builds (decided on first use, then kept for the session)."""
        async with self._chosen:
            if self._kind is None:
                if buildkit_disabled():
                    self._kind = BuilderKind.LEGACY
                    self._why_legacy = "DOCKER_BUILDKIT=0 selects the legacy builder"
                else:
                    self._buildx = await buildkit.buildx_info(self._docker_cli)
                    self._kind = BuilderKind.BUILDKIT if self._buildx else BuilderKind.LEGACY
                    self._why_legacy = "docker buildx is not installed"
            elif self._kind is BuilderKind.BUILDKIT and self._buildx is None:
                self._buildx = await buildkit.buildx_info(self._docker_cli)
                if self._buildx is None:
                    raise BuildError("BuildKit was asked for, but `docker buildx version` "
                                     f"fails: {build_errors.BUILDX_HELP}")
            elif self._kind is BuilderKind.LEGACY and not self._why_legacy:
                self._why_legacy = "the legacy builder was selected"
            return self._kind

    async def describe(self) -> str:
        """One line for the log saying which builder runs and why."""
        if await self.builder_kind() is BuilderKind.BUILDKIT:
            assert self._buildx is not None
            return f"Building with BuildKit ({self._buildx.version})"
        return f"Building with the Docker engine's legacy builder ({self._why_legacy})"

    async def build(self, target: plan.DockerBuild, *, log: LogFn,
                    registry: reg.Registry | None = None) -> BuiltImage:
        """Build `target`, streaming progress to `log`, and tag the image with its content
        tag under the image's (registry) name; also apply `extra_tag`s."""
        log(await self.describe())
        if await self.builder_kind() is BuilderKind.BUILDKIT:
            image_id = await self._build_buildkit(target, log)
            return await asyncio.to_thread(self._tag_built, target, registry, image_id)
        message = build_errors.needs_buildkit_message(target, self._why_legacy)
        if message:
            raise BuildError(message)
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

    async def _build_buildkit(self, target: plan.DockerBuild, log: LogFn) -> str:
        try:
            dockerfile = await asyncio.to_thread(dockerfile_source, target)
        except OSError as e:
            raise BuildError(f"docker_build {target.ref!r}: {e}") from e
        if "syntax" in parse_dockerfile(dockerfile.decode(errors="replace")).directives:
            with tempfile.TemporaryDirectory(prefix="devloop-dockerfile-") as tmp:
                path = os.path.join(tmp, "Dockerfile")
                await asyncio.to_thread(_write_dockerfile_dir, target, path, dockerfile)
                source = buildkit.BuildInput(context=os.path.abspath(target.context),
                                             dockerfile=path)
                return await self._run_buildx(target, source, log)
        try:
            ctx = await asyncio.to_thread(make_build_context, target)
        except OSError as e:
            raise BuildError(f"docker_build {target.ref!r}: {e}") from e
        try:
            source = buildkit.BuildInput(context="-", dockerfile=ctx.dockerfile,
                                         stdin=ctx.tar.fileno())
            return await self._run_buildx(target, source, log)
        finally:
            ctx.close()

    async def _run_buildx(self, target: plan.DockerBuild, source: buildkit.BuildInput,
                          log: LogFn) -> str:
        try:
            return await buildkit.run_build(target, source=source, log=log,
                                            docker=self._docker_cli)
        except buildkit.BuildxFailed as e:
            raise _buildkit_error(target, e) from None
        except OSError as e:
            raise BuildError(f"docker_build {target.ref!r}: cannot run docker buildx: {e}",
                             temporary=True) from e

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
        return self._tag_built(target, registry, image_id)

    def _tag_built(self, target: plan.DockerBuild, registry: reg.Registry | None,
                   image_id: str) -> BuiltImage:
        import docker.errors  # loaded on first use: see default_api_client

        api = self._client()
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
        import docker.errors  # loaded on first use: see default_api_client

        step_lines: list[str] = []
        image_id = ""
        short_id = ""

        def line_out(line: str) -> None:
            nonlocal short_id
            if _STEP.match(line):
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
                extra_hosts=_extra_hosts(target.extra_hosts) or None,
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
                    raise _legacy_error(target, message, step_lines)
            splitter.flush()
        except docker.errors.APIError as e:
            raise _legacy_error(target, str(e.explanation or e), step_lines) from e
        except docker.errors.DockerException as e:
            raise BuildError(f"docker_build {target.ref!r}: Docker engine error: {e}",
                             temporary=True) from e
        except OSError as e:  # the connection dropped mid-build
            raise BuildError(f"docker_build {target.ref!r}: connection to the Docker engine "
                             f"lost: {e}", temporary=True) from e
        if not image_id and short_id:
            image_id = str(api.inspect_image(short_id)["Id"])  # type: ignore[no-untyped-call]
        if not image_id:
            raise BuildError(f"docker_build {target.ref!r}: the engine reported no image ID",
                             "\n".join(step_lines[-FALLBACK_TAIL_LINES:]))
        return image_id

    async def image_id(self, ref: str) -> str | None:
        """The ID of a local image, or None when the engine has no such image."""

        def inspect() -> str | None:
            import docker.errors  # loaded on first use: see default_api_client

            try:
                return str(self._client().inspect_image(ref)["Id"])  # type: ignore[no-untyped-call]
            except docker.errors.ImageNotFound:
                return None
            except docker.errors.APIError as e:
                raise BuildError(f"inspecting image {ref}: {e.explanation or e}") from e

        return await asyncio.to_thread(inspect)

    async def reuse(self, target: plan.DockerBuild, image_id: str, *,
                    registry: reg.Registry | None = None) -> BuiltImage | None:
        """`image_id`, built earlier from `target`'s inputs, tagged as a build of
        `target` would tag it; None when the engine no longer has it."""
        if await self.image_id(image_id) is None:
            return None
        return await asyncio.to_thread(self._tag_built, target, registry, image_id)

    async def tag(self, image_id: str, repo: str, tag: str) -> None:
        def do_tag() -> None:
            import docker.errors  # loaded on first use: see default_api_client

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
        import docker.errors  # loaded on first use: see default_api_client

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
