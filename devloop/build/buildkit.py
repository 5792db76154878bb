"""docker_build with BuildKit: `docker buildx build` against the Docker engine.

Docker users build with BuildKit through the buildx CLI plugin, so devloop runs the same
command: the filtered context (see `context.py`) goes to buildx as a tar on stdin (`-`),
progress comes back as `--progress=rawjson` on stderr and is rendered line by line into
the resource's log while the build runs (`buildkit_progress.py`), and `--iidfile` gives
the image ID that the content tag is made from.

A Dockerfile with a `# syntax=` line runs an external frontend, which cannot read a context
uploaded on stdin from older engines' BuildKit (Debian's Docker 20.10 answers "no http
response from session"). Such builds give buildx the context directory itself, with the
Dockerfile and the filter (`Dockerfile.dockerignore`, which the external frontend reads in
place of the context's `.dockerignore`) in a temporary directory.

The image goes where the user's current buildx builder puts it: with the default `docker`
driver BuildKit runs inside the engine and writes the image straight into the engine's
image store (`--load` costs nothing there), from which it is pushed; a container builder
the user selected (`docker buildx use`) exports it into the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from devloop.build.buildkit_progress import ProgressRenderer
from devloop.model import plan

LogFn = Callable[[str], None]

DOCKER = "docker"
# `docker buildx version` answers in well under a second; a hung engine socket must not
# hang the first build forever.
VERSION_TIMEOUT_SECONDS = 30.0
_VERSION = re.compile(r"\bv?(\d+\.\d+\.\d+\S*)")


@dataclass(frozen=True)
class BuildxInfo:
    """The buildx plugin found: its version line, e.g. `github.com/docker/buildx v0.38.2`."""

    version: str


class BuildxFailed(Exception):
    """`buildx build` exited non-zero; `renderer` holds what its progress said."""

    def __init__(self, returncode: int, renderer: ProgressRenderer) -> None:
        super().__init__(f"docker buildx build exited with {returncode}")
        self.returncode = returncode
        self.renderer = renderer

    @property
    def message(self) -> str:
        """buildx's own closing error ("ERROR: failed to build: ..."), else the failed step's."""
        for line in reversed(self.renderer.other_lines):
            if line.startswith("ERROR:"):
                return line.removeprefix("ERROR:").strip()
        if self.renderer.failed:
            return self.renderer.failed.error
        return "\n".join(self.renderer.other_lines[-5:]) or str(self)


async def buildx_info(docker: str = DOCKER) -> BuildxInfo | None:
    """The buildx plugin of the docker CLI on PATH, or None when there is none."""
    try:
        proc = await asyncio.create_subprocess_exec(
            docker, "buildx", "version", stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), VERSION_TIMEOUT_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    text = out.decode(errors="replace").strip()
    if proc.returncode != 0 or not _VERSION.search(text):
        return None
    return BuildxInfo(version=text.splitlines()[0])


@dataclass(frozen=True)
class BuildInput:
    """What buildx reads: a context tar on stdin (`stdin` a file descriptor, `context`
    "-"), or a directory (`stdin` None); `dockerfile` as `--file` names it."""

    context: str
    dockerfile: str
    stdin: int | None = None


def build_argv(target: plan.DockerBuild, *, dockerfile: str, iidfile: str,
               docker: str = DOCKER, context: str = "-") -> list[str]:
    """The `docker buildx build` command line for `target` (context "-": a tar on stdin)."""
    argv = [docker, "buildx", "build", "--progress=rawjson", "--iidfile", iidfile,
            "--file", dockerfile, "--load"]
    if target.target:
        argv += ["--target", target.target]
    for name, value in target.build_args:
        argv += ["--build-arg", f"{name}={value}"]
    for spec in target.secret:
        argv += ["--secret", spec]
    for spec in target.ssh:
        argv += ["--ssh", spec]
    if target.network:
        argv += ["--network", target.network]
    if target.platform:
        argv += ["--platform", target.platform]
    for ref in target.cache_from:
        argv += ["--cache-from", ref]
    for host in target.extra_hosts:
        argv += ["--add-host", host]
    if target.pull:
        argv.append("--pull")
    argv.append(context)
    return argv


async def run_build(target: plan.DockerBuild, *, source: BuildInput, log: LogFn,
                    docker: str = DOCKER, env: dict[str, str] | None = None) -> str:
    """Run buildx on `source`; return the image ID. Raises BuildxFailed, or OSError when
    docker cannot be started."""
    renderer = ProgressRenderer(log)
    with tempfile.TemporaryDirectory(prefix="devloop-buildx-") as tmp:
        iidfile = os.path.join(tmp, "iid")
        argv = build_argv(target, dockerfile=source.dockerfile, iidfile=iidfile, docker=docker,
                          context=source.context)
        stdin = source.stdin if source.stdin is not None else asyncio.subprocess.DEVNULL
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=stdin, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
        try:
            assert proc.stdout is not None and proc.stderr is not None
            await asyncio.gather(_pump(proc.stderr, renderer.feed_line),
                                 _pump(proc.stdout, renderer.feed_line))
            returncode = await proc.wait()
        except BaseException:
            # Cancelled (a newer change arrived, or shutdown): stop buildx, which ends
            # its session with BuildKit and so the build.
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(proc.wait(), 10)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise
        renderer.finish()
        if returncode != 0:
            raise BuildxFailed(returncode, renderer)
        try:
            with open(iidfile, encoding="utf-8") as f:
                image_id = f.read().strip()
        except OSError:
            image_id = ""
    if not image_id:
        raise BuildxFailed(returncode, renderer)
    return image_id


async def _pump(stream: asyncio.StreamReader, feed: Callable[[str], None]) -> None:
    # readline() would fail on a line over the stream's limit (a long log line in one JSON
    # status); read in chunks and split ourselves so no line size is too big.
    partial = b""
    while chunk := await stream.read(1 << 16):
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for line in lines:
            feed(line.decode("utf-8", errors="replace"))
    if partial:
        feed(partial.decode("utf-8", errors="replace"))
