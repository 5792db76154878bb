"""BuildKit builder pieces without a Docker engine: the buildx command line, the progress
renderer (rawjson SolveStatus lines -> log lines) and the error messages."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import pytest

from devloop.build import build_errors, buildkit
from devloop.build.buildkit_progress import ProgressRenderer
from devloop.build.docker_builder import BuilderKind, DockerBuilder, buildkit_disabled
from devloop.model import plan


def test_argv_carries_every_docker_build_option() -> None:
    target = plan.DockerBuild(
        ref="app", context="/src", dockerfile="/src/Dockerfile", target="prod",
        build_args=(("A", "1"), ("B", "two words")), secret=("id=tok,src=token.txt",),
        ssh=("default",), network="host", platform="linux/amd64",
        cache_from=("localhost:5000/app:cache",), pull=True, extra_hosts=("db:10.0.0.5",))
    argv = buildkit.build_argv(target, dockerfile="Dockerfile", iidfile="/tmp/iid")
    assert argv[:3] == ["docker", "buildx", "build"]
    assert argv[-1] == "-"  # the filtered context arrives on stdin
    pairs = list(zip(argv, argv[1:], strict=False))
    for flag, value in [("--target", "prod"), ("--build-arg", "A=1"),
                        ("--build-arg", "B=two words"), ("--secret", "id=tok,src=token.txt"),
                        ("--ssh", "default"), ("--network", "host"),
                        ("--platform", "linux/amd64"),
                        ("--cache-from", "localhost:5000/app:cache"),
                        ("--add-host", "db:10.0.0.5"), ("--iidfile", "/tmp/iid"),
                        ("--file", "Dockerfile")]:
        assert (flag, value) in pairs
    assert "--pull" in argv and "--load" in argv and "--progress=rawjson" in argv


def test_argv_leaves_out_unset_options() -> None:
    argv = buildkit.build_argv(plan.DockerBuild(ref="app", context=".", dockerfile="Dockerfile"),
                               dockerfile="Dockerfile", iidfile="iid")
    for flag in ("--target", "--build-arg", "--secret", "--ssh", "--network", "--platform",
                 "--cache-from", "--pull", "--add-host"):
        assert flag not in argv


@pytest.mark.parametrize(("value", "disabled"),
                         [("0", True), ("false", True), ("1", False), ("", False)])
def test_docker_buildkit_zero_selects_the_legacy_builder(value: str, disabled: bool) -> None:
    assert buildkit_disabled({"DOCKER_BUILDKIT": value}) is disabled


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _render(statuses: list[dict[str, Any]]) -> tuple[list[str], ProgressRenderer]:
    lines: list[str] = []
    renderer = ProgressRenderer(lines.append)
    for status in statuses:
        renderer.feed_line(json.dumps(status))
    renderer.finish()
    return lines, renderer


T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:00:01.5Z"


def test_progress_shows_step_logs_cached_and_duration() -> None:
    lines, renderer = _render([
        {"vertexes": [{"digest": "sha256:a", "name": "[internal] load build context",
                       "started": T0, "completed": T0}]},
        {"vertexes": [{"digest": "sha256:b", "name": "[2/3] COPY . /app", "cached": True,
                       "started": T0, "completed": T0}]},
        {"vertexes": [{"digest": "sha256:c", "name": "[3/3] RUN make", "started": T0}]},
        {"logs": [{"vertex": "sha256:c", "stream": 1, "data": _b64("compiling\npart"),
                   "timestamp": T0}]},
        {"logs": [{"vertex": "sha256:c", "stream": 1, "data": _b64("ial line\n"),
                   "timestamp": T1}]},
        {"vertexes": [{"digest": "sha256:c", "name": "[3/3] RUN make", "started": T0,
                       "completed": T1}]},
    ])
    assert lines == ["#2 [2/3] COPY . /app", "#2 CACHED", "#3 [3/3] RUN make",
                     "#3 0.000 compiling", "#3 1.500 partial line", "#3 DONE 1.5s"]
    assert renderer.failed is None


def test_progress_records_the_failed_step_and_buildx_error() -> None:
    lines, renderer = _render([
        {"vertexes": [{"digest": "sha256:c", "name": "[2/2] RUN exit 3", "started": T0}]},
        {"logs": [{"vertex": "sha256:c", "stream": 2, "data": _b64("boom\n"),
                   "timestamp": T0}]},
        {"vertexes": [{"digest": "sha256:c", "name": "[2/2] RUN exit 3", "started": T0,
                       "completed": T1, "error": "exit code: 3"}]},
    ])
    renderer.feed_line("ERROR: failed to build: failed to solve: exit code: 3")
    assert lines[-2:] == ["#1 ERROR: exit code: 3",
                          "ERROR: failed to build: failed to solve: exit code: 3"]
    assert renderer.failed is not None
    assert renderer.failed.tail == ("boom",)
    failure = buildkit.BuildxFailed(1, renderer)
    assert failure.message == "failed to build: failed to solve: exit code: 3"


def test_progress_hides_quick_internal_steps_but_not_their_errors() -> None:
    lines, _ = _render([
        {"vertexes": [{"digest": "sha256:m", "name": "[internal] load metadata for x",
                       "started": T0, "completed": T0, "error": "not found"}]},
    ])
    assert lines == ["#1 [internal] load metadata for x", "#1 ERROR: not found"]


def test_missing_base_image_names_image_line_and_remedy(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Dockerfile").write_text("ARG V=3.99\nFROM python:${V}-slim\nRUN true\n")
    target = plan.DockerBuild(ref="app", context=str(tmp_path),
                              dockerfile=str(tmp_path / "Dockerfile"))
    image = build_errors.image_from_failure(
        "[internal] load metadata for docker.io/library/python:3.99-slim", "no such host")
    assert image == "docker.io/library/python:3.99-slim"
    message = build_errors.missing_base_image_message(target, image, 'Get "x": no such host')
    assert "base image python:3.99-slim (Dockerfile:2: `FROM python:${V}-slim`)" in message
    assert "docker_build('python', ...)" in message
    assert "Step" not in message


def test_legacy_step_line_and_registry_url_name_the_image() -> None:
    assert build_errors.image_from_failure("Step 1/4 : FROM foo:1.2", "x") == "foo:1.2"
    assert build_errors.image_from_failure(
        "", 'Head "https://registry-1.docker.io/v2/library/foo/manifests/1.2": no such host'
    ) == "docker.io/library/foo:1.2"
    assert build_errors.image_from_failure("[2/3] RUN make", "exit code: 2") is None


def test_legacy_builder_error_names_the_line_that_needs_buildkit(tmp_path: Path) -> None:
    target = plan.DockerBuild(ref="app", context=str(tmp_path), dockerfile="Dockerfile",
                              dockerfile_contents="FROM x\nRUN --mount=type=cache,target=/c make\n")
    message = build_errors.needs_buildkit_message(target, "docker buildx is not installed")
    assert message is not None
    assert ":2: `RUN --mount=type=cache,target=/c make` uses RUN --mount" in message
    assert "docker buildx is not installed" in message and "buildx CLI plugin" in message
    plain = plan.DockerBuild(ref="app", context=str(tmp_path), dockerfile="Dockerfile",
                             dockerfile_contents="FROM x\nRUN make\n")
    assert build_errors.needs_buildkit_message(plain, "no buildx") is None
    secret = plan.DockerBuild(ref="app", context=str(tmp_path), dockerfile="Dockerfile",
                              dockerfile_contents="FROM x\n", secret=("id=a,src=b",))
    assert "secret=" in (build_errors.needs_buildkit_message(secret, "no buildx") or "")


def test_context_copy_and_export_steps_stay_out_of_a_quick_build_log() -> None:
    lines, _ = _render([
        {"vertexes": [{"digest": "sha256:x", "name": "copy /context /", "started": T0,
                       "completed": T0}]},
        {"vertexes": [{"digest": "sha256:e", "name": "exporting to image", "started": T0,
                       "completed": T1}]},
    ])
    # Quick auxiliary steps are hidden; a slow one is shown with its duration.
    assert lines == ["#2 exporting to image", "#2 DONE 1.5s"]


def _fake_docker(tmp_path: Path, script: str) -> str:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_buildkit_is_chosen_when_the_buildx_plugin_answers(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    docker = _fake_docker(tmp_path, 'echo "github.com/docker/buildx v0.38.2 abcdef"\n')
    builder = DockerBuilder(docker_cli=docker)
    assert asyncio.run(builder.describe()) == (
        "Building with BuildKit (github.com/docker/buildx v0.38.2 abcdef)")


def test_legacy_builder_when_buildx_is_missing_or_disabled(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_BUILDKIT", raising=False)
    missing = _fake_docker(tmp_path, "echo \"docker: 'buildx' is not a docker command.\" >&2\n"
                                     "exit 1\n")
    assert asyncio.run(DockerBuilder(docker_cli=missing).builder_kind()) is BuilderKind.LEGACY
    assert "docker buildx is not installed" in asyncio.run(
        DockerBuilder(docker_cli=missing).describe())
    present = _fake_docker(tmp_path, 'echo "github.com/docker/buildx v0.38.2"\n')
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")
    assert "DOCKER_BUILDKIT=0" in asyncio.run(DockerBuilder(docker_cli=present).describe())
