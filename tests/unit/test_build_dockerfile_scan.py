"""Dockerfile scanning for error messages: BuildKit-only lines and FROM lines."""

from __future__ import annotations

import pytest

from devloop.build import dockerfile_scan as scan


def test_instructions_keep_their_first_line_number_across_continuations() -> None:
    df = scan.parse("# comment\n\nFROM busybox\nRUN echo a \\\n  && echo b\nCMD [\"sh\"]\n")
    assert [(i.line, i.keyword) for i in df.instructions] == [(3, "FROM"), (4, "RUN"), (6, "CMD")]
    assert df.instructions[1].args == "echo a && echo b"


def test_syntax_directive_only_counts_at_the_top() -> None:
    assert scan.parse("# syntax=docker/dockerfile:1\nFROM x\n").directives == {
        "syntax": (1, "docker/dockerfile:1")}
    assert scan.parse("FROM x\n# syntax=docker/dockerfile:1\n").directives == {}


@pytest.mark.parametrize(
    ("dockerfile", "line", "what"),
    [
        ("# syntax=docker/dockerfile:1\nFROM x\n", 1, "a `# syntax=` frontend line"),
        ("FROM x\nRUN --mount=type=cache,target=/root/.cache pip install .\n", 2,
         "RUN --mount=type=cache,target=/root/.cache"),
        ("FROM x\nCOPY --chown=1:1 a /a\nCOPY --chmod=755 run.sh /\n", 3, "COPY --chmod=755"),
        ("FROM x\nCOPY --link . /app\n", 2, "COPY --link"),
        ("FROM x\nRUN <<EOF\necho hi\nEOF\nRUN true\n", 2, "a heredoc in RUN"),
    ],
)
def test_buildkit_features_name_the_line(dockerfile: str, line: int, what: str) -> None:
    features = scan.buildkit_features(dockerfile)
    assert (features[0].line, features[0].what) == (line, what)


def test_plain_dockerfile_needs_no_buildkit() -> None:
    text = "FROM --platform=linux/amd64 python:3.11-slim AS base\nCOPY --chown=1:1 . /a\n"
    assert scan.buildkit_features(text) == []


def test_heredoc_body_is_not_read_as_instructions() -> None:
    df = scan.parse("FROM x\nCOPY <<EOF /etc/conf\nRUN --mount=type=cache x\nEOF\nCMD a\n")
    assert [i.keyword for i in df.instructions] == ["FROM", "COPY", "CMD"]


def test_base_images_substitute_args_and_skip_stages() -> None:
    text = ("ARG PY=3.10\nARG BASE\nFROM python:${PY}-slim AS build\nFROM $BASE\n"
            "FROM build\nFROM scratch\n")
    found = scan.base_images(text, {"BASE": "golang:1.26"})
    assert [(b.line, b.image) for b in found] == [(3, "python:3.10-slim"), (4, "golang:1.26")]


@pytest.mark.parametrize(
    ("name", "normal"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("python:3.11", "docker.io/library/python:3.11"),
        ("docker.io/library/python:3.11", "docker.io/library/python:3.11"),
        ("foo/bar:1", "docker.io/foo/bar:1"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
    ],
)
def test_normalize_image(name: str, normal: str) -> None:
    assert scan.normalize_image(name) == normal
