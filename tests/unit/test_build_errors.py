"""Build errors that name the Dockerfile line (build/build_errors.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devloop.build import build_errors
from devloop.model import plan as p


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
    assert build_errors.normalize_image(name) == normal


def test_missing_base_image_names_its_from_line_after_substitution(tmp_path: Path) -> None:
    text = ("ARG PY=3.10\nARG BASE\nFROM python:${PY}-slim AS build\n"
            "COPY --from=golang:1.26 /a /a\nFROM build\nFROM $BASE\n")
    target = p.DockerBuild(ref="app", context=str(tmp_path), dockerfile="Dockerfile",
                           dockerfile_contents=text, build_args=(("BASE", "golang:1.26"),))
    message = build_errors.missing_base_image_message(
        target, "docker.io/library/golang:1.26", "no such host")
    assert "base image golang:1.26 (the dockerfile_contents of docker_build('app'):6: " \
           "`FROM $BASE`)" in message
