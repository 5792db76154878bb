"""docker_build through BuildKit (`docker buildx build`) against the real Docker engine and
registry: BuildKit-only Dockerfiles, every docker_build option, progress streamed while the
build runs, the legacy fallback's errors and the missing-base-image error."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import signal
import subprocess
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import docker
import pytest

from devloop.build import registry as reg
from devloop.build.docker_builder import BuilderKind, BuildError, BuiltImage, DockerBuilder
from devloop.model import plan

from .conftest import K8sTestEnv

pytestmark = pytest.mark.integration


@dataclass
class Engine:
    """The Docker engine, and the images a test built (removed afterwards)."""

    client: docker.DockerClient
    created: list[str] = field(default_factory=list)


@pytest.fixture
def engine(testenv: K8sTestEnv) -> Iterator[Engine]:
    found = Engine(docker.from_env())
    try:
        yield found
    finally:
        for image_id in found.created:
            with contextlib.suppress(docker.errors.APIError):
                found.client.images.remove(image_id, force=True)
        found.client.close()


class Log:
    """Collects log lines with the time each arrived."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str]] = []

    def __call__(self, line: str) -> None:
        self.lines.append((time.monotonic(), line))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def first_output(self, text: str) -> float:
        """When a step's output line `text` arrived (`#<step> <seconds> <text>`)."""
        for at, line in self.lines:
            if re.fullmatch(rf"#\d+ \d+\.\d+ {re.escape(text)}", line):
                return at
        raise AssertionError(f"{text!r} not in the log:\n{self.text}")


def build(target: plan.DockerBuild, log: Log, engine: Engine, *,
          kind: BuilderKind = BuilderKind.BUILDKIT,
          registry: reg.Registry | None = None) -> BuiltImage:
    built = asyncio.run(DockerBuilder(kind=kind).build(target, log=log, registry=registry))
    engine.created.append(built.image_id)
    return built


def run(engine: Engine, image: str, *command: str) -> str:
    return str(engine.client.containers.run(image, list(command), remove=True).decode())


def read_in_image(engine: Engine, image: str, path: str) -> str:
    """The file at `path` in `image`, copied out of a container that never starts.

    Reading it with `cat` in a running container goes through the container's log, which can
    lose a last line that has no newline when the container exits quickly."""
    container = engine.client.containers.create(image, ["true"])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            member = archive.extractfile(PurePosixPath(path).name)
            assert member is not None, f"{path} in {image} is not a regular file"
            return member.read().decode()
    finally:
        container.remove(force=True)


def target_in(directory: Path, dockerfile: str,
              cache_from: tuple[str, ...] = ()) -> plan.DockerBuild:
    (directory / "Dockerfile").write_text(dockerfile)
    return plan.DockerBuild(ref=f"devloop-bk-{uuid.uuid4().hex[:8]}", context=str(directory),
                            dockerfile=str(directory / "Dockerfile"), cache_from=cache_from)


def test_run_mount_type_cache_builds_and_the_cache_survives(
        engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("first\n")
    dockerfile = (
        "FROM busybox\n"
        "COPY input.txt /input.txt\n"
        "RUN --mount=type=cache,target=/cache,id=devloop-test-cache "
        "cat /input.txt >> /cache/seen && cp /cache/seen /seen\n"
    )
    target = target_in(tmp_path, dockerfile)
    log = Log()
    first = build(target, log, engine)
    assert log.text.startswith("Building with BuildKit (github.com/docker/buildx v")
    (tmp_path / "input.txt").write_text("second\n")
    second = build(target, Log(), engine)
    # The cache mount kept what the first build wrote; the image layers do not have it.
    seen = read_in_image(engine, second.ref, "/seen")
    assert seen.splitlines()[-2:] == ["first", "second"]
    assert first.image_id != second.image_id
    assert second.tag == f"devloop-{second.image_id.removeprefix('sha256:')[:16]}"


def test_syntax_line_builds_offline_with_the_local_frontend(
        engine: Engine, tmp_path: Path) -> None:
    # Heredocs and COPY --chmod need the external frontend that `# syntax=` names.
    dockerfile = (
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox\n"
        "COPY --chmod=755 <<EOF /hello.sh\n"
        "#!/bin/sh\n"
        "echo hello from a heredoc\n"
        "EOF\n"
        "RUN <<EOF\n"
        "set -e\n"
        "/hello.sh > /out.txt\n"
        "EOF\n"
    )
    built = build(target_in(tmp_path, dockerfile), Log(), engine)
    assert read_in_image(engine, built.ref, "/out.txt") == "hello from a heredoc\n"
    assert run(engine, built.ref, "stat", "-c", "%a", "/hello.sh").strip() == "755"


def test_progress_lines_arrive_while_the_build_runs(
        engine: Engine, tmp_path: Path) -> None:
    token = uuid.uuid4().hex[:8]
    dockerfile = (
        "FROM busybox\n"
        f"RUN echo step-starts-{token} && sleep 4 && echo step-ends-{token}\n"
    )
    log = Log()
    build(target_in(tmp_path, dockerfile), log, engine)
    started = log.first_output(f"step-starts-{token}")
    ended = log.first_output(f"step-ends-{token}")
    # Streamed: the first line was in the log while the step was still sleeping.
    assert ended - started >= 3.0, log.text
    assert f"RUN echo step-starts-{token}" in log.text
    assert any(line.split(" ", 1)[1].startswith("DONE ") for _, line in log.lines
               if line.startswith("#")), log.text
    # A second build of the same input reports its steps as cached.
    again = Log()
    build(target_in(tmp_path, dockerfile), again, engine)
    assert "CACHED" in again.text


def test_every_docker_build_option_reaches_buildkit(
        engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "app.txt").write_text("app\n")
    (tmp_path / "ignored.txt").write_text("should not be sent\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_text("not in only\n")
    secret = tmp_path / "token.txt"
    secret.write_text("s3cret-value")
    extra = f"devloop-bk-extra:{uuid.uuid4().hex[:8]}"
    dockerfile = (
        "FROM busybox AS base\n"
        "ARG GREETING=unset\n"
        "RUN echo \"$GREETING\" > /greeting\n"
        "COPY . /ctx/\n"
        "RUN --mount=type=secret,id=token cp /run/secrets/token /secret-copy\n"
        "RUN grep -q 'db.internal' /etc/hosts && echo host-ok > /hosts\n"
        "FROM base AS final\n"
        "RUN echo final > /stage\n"
        "FROM base AS other\n"
        "RUN echo other > /stage\n"
    )
    target = plan.DockerBuild(
        ref=f"devloop-bk-{uuid.uuid4().hex[:8]}", context=str(tmp_path),
        dockerfile="Dockerfile", dockerfile_contents=dockerfile, target="final",
        build_args=(("GREETING", "hi there"),), secret=(f"id=token,src={secret}",),
        extra_tag=(extra,), network="default", platform="linux/amd64",
        only=("app.txt", "ignored.txt"), ignore=("ignored.txt",),
        extra_hosts=("db.internal:10.1.2.3",))
    built = build(target, Log(), engine)
    try:
        assert read_in_image(engine, built.ref, "/stage") == "final\n"
        assert read_in_image(engine, built.ref, "/greeting") == "hi there\n"
        assert read_in_image(engine, built.ref, "/secret-copy") == "s3cret-value"
        assert read_in_image(engine, built.ref, "/hosts") == "host-ok\n"
        assert run(engine, built.ref, "ls", "/ctx").split() == ["app.txt"]
        assert engine.client.images.get(extra).id == built.image_id
    finally:
        engine.client.images.remove(extra, force=True)


def test_cache_from_and_pull_options_are_accepted(
        engine: Engine, tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nRUN echo cached-from > /f\n"
    target = target_in(tmp_path, dockerfile,
                       cache_from=("localhost:5000/devloop-bk-cache:none",))
    built = build(target, Log(), engine)
    assert read_in_image(engine, built.ref, "/f") == "cached-from\n"


def test_built_image_is_pushed_to_the_registry(
        engine: Engine, tmp_path: Path, testenv: K8sTestEnv) -> None:
    target = target_in(tmp_path, "FROM busybox\nRUN echo pushed > /f\n")
    registry = reg.Registry(host=testenv.registry)

    async def build_and_push() -> str:
        builder = DockerBuilder(kind=BuilderKind.BUILDKIT)
        built = await builder.build(target, log=Log(), registry=registry)
        engine.created.append(built.image_id)
        return await builder.push(built, registry)

    ref = asyncio.run(build_and_push())
    name, tag = ref.removeprefix(f"{testenv.registry}/").rsplit(":", 1)
    request = urllib.request.Request(
        f"http://127.0.0.1:5000/v2/{name}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


@pytest.mark.parametrize("kind", [BuilderKind.BUILDKIT, BuilderKind.LEGACY])
def test_missing_base_image_names_image_line_and_what_to_do(
        engine: Engine, tmp_path: Path, kind: BuilderKind,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = f"devloop-missing-{uuid.uuid4().hex[:8]}:1.2"
    target = target_in(tmp_path, f"FROM busybox AS tools\nFROM {missing}\nRUN true\n")
    with pytest.raises(BuildError) as info:
        build(target, Log(), engine, kind=kind)
    text = str(info.value)
    assert f"base image {missing} (Dockerfile:2: `FROM {missing}`)" in text
    assert f"docker pull {missing}" in text
    # The error is the last thing said: no build step line trails it.
    assert "Step " not in text and "#" not in text.splitlines()[-1]


def test_legacy_builder_refuses_buildkit_lines_with_the_line_and_the_fix(
        engine: Engine, tmp_path: Path) -> None:
    target = target_in(tmp_path, "FROM busybox\nRUN --mount=type=cache,target=/c true\n")
    log = Log()
    with pytest.raises(BuildError) as info:
        build(target, log, engine, kind=BuilderKind.LEGACY)
    assert log.text.startswith("Building with the Docker engine's legacy builder")
    message = str(info.value)
    assert "Dockerfile:2: `RUN --mount=type=cache,target=/c true` uses RUN --mount" in message
    assert "needs BuildKit" in message and "buildx" in message


def test_legacy_builder_still_builds_plain_dockerfiles(
        engine: Engine, tmp_path: Path) -> None:
    built = build(target_in(tmp_path, "FROM busybox\nRUN echo legacy > /f\n"), Log(), engine,
                  kind=BuilderKind.LEGACY)
    assert read_in_image(engine, built.ref, "/f") == "legacy\n"


def test_syntax_line_build_keeps_only_ignore_and_dockerignore(
        engine: Engine, tmp_path: Path) -> None:
    # These builds hand BuildKit the context directory: the filter must still hold.
    for name in ("keep.txt", "ignored.txt", "dockerignored.txt", "outside.txt"):
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("dockerignored.txt\n")
    target = plan.DockerBuild(
        ref=f"devloop-bk-{uuid.uuid4().hex[:8]}", context=str(tmp_path), dockerfile="Dockerfile",
        dockerfile_contents="# syntax=docker/dockerfile:1\nFROM busybox\nCOPY . /ctx/\n",
        only=("keep.txt", "ignored.txt", "dockerignored.txt"), ignore=("ignored.txt",))
    built = build(target, Log(), engine)
    assert run(engine, built.ref, "ls", "/ctx").split() == ["keep.txt"]


def test_context_with_long_and_non_ascii_paths_reaches_buildkit(
        engine: Engine, tmp_path: Path) -> None:
    # Such paths need PAX headers in the tar; buildx must still see a tar on stdin.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "caf\u00e9-long-name.txt").write_text("deep\n")
    built = build(target_in(tmp_path, "FROM busybox\nCOPY . /ctx/\n"), Log(), engine)
    listing = run(engine, built.ref, "find", "/ctx", "-name", "caf*")
    assert listing.strip().endswith("-long-name.txt")


def test_pull_fetches_the_base_image_from_the_registry(
        engine: Engine, tmp_path: Path, testenv: K8sTestEnv) -> None:
    dockerfile = f"FROM {testenv.registry}/busybox:latest\nRUN echo pulled > /f\n"
    target = plan.DockerBuild(ref=f"devloop-bk-{uuid.uuid4().hex[:8]}", context=str(tmp_path),
                              dockerfile="Dockerfile", dockerfile_contents=dockerfile, pull=True)
    log = Log()
    built = build(target, log, engine)
    assert read_in_image(engine, built.ref, "/f") == "pulled\n"


def test_ssh_forwards_the_agent_into_run_mounts(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agent = subprocess.run(["ssh-agent", "-s", "-a", str(tmp_path / "agent.sock")],
                           capture_output=True, text=True, check=True)
    pid = re.search(r"SSH_AGENT_PID=(\d+)", agent.stdout)
    assert pid, agent.stdout
    try:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
        dockerfile = ("FROM busybox\n"
                      "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo forwarded > /f\n")
        target = plan.DockerBuild(ref=f"devloop-bk-{uuid.uuid4().hex[:8]}",
                                  context=str(tmp_path), dockerfile="Dockerfile",
                                  dockerfile_contents=dockerfile, ssh=("default",),
                                  ignore=("agent.sock",))
        built = build(target, Log(), engine)
        assert read_in_image(engine, built.ref, "/f") == "forwarded\n"
    finally:
        os.kill(int(pid.group(1)), signal.SIGTERM)
