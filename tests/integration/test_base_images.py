"""The locally built base images stand in for the Docker Hub ones: unmodified Dockerfiles
`FROM python:3.11-slim`, `golang:1.26`, `node:18-bookworm-slim`, `eclipse-temurin:17` etc.
build, their RUN steps reach the package mirrors, and every tag names a version the image
really contains."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .conftest import K8sTestEnv

pytestmark = pytest.mark.integration


@pytest.fixture
def docker_client(testenv: K8sTestEnv) -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    try:
        yield engine
    finally:
        engine.close()


@pytest.mark.parametrize(
    "tag",
    [
        "busybox:latest",
        "debian:bookworm-slim",
        "debian:bookworm",
        "python:3.11-slim",
        "python:3.11",
        "golang:1.26",
        "golang:1.26-bookworm",
        "node:18-bookworm-slim",
        "node:18",
        "openjdk:17-jdk-slim",
        "eclipse-temurin:17",
        "docker/dockerfile:1",
    ],
)
def test_base_image_present(docker_client: docker.DockerClient, tag: str) -> None:
    docker_client.images.get(tag)


def test_python_image_is_python_311(docker_client: docker.DockerClient) -> None:
    output = docker_client.containers.run(
        "python:3.11-slim", ["python", "--version"], remove=True, stderr=True
    )
    assert output.decode().startswith("Python 3.11.")


def test_pip_install_during_docker_build(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    # `six` is a single pure-Python module: the build only proves that PyPI is reachable.
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\nRUN pip install --no-cache-dir six\n"
    )
    tag = f"devloop-testenv-pip:{uuid.uuid4().hex[:12]}"
    image, _ = docker_client.images.build(path=str(tmp_path), tag=tag, rm=True)
    try:
        output = docker_client.containers.run(
            tag, ["python", "-c", "import six; print(six.__name__)"], remove=True
        )
        assert output.decode().strip() == "six"
    finally:
        docker_client.images.remove(image.id, force=True)


def _run(engine: docker.DockerClient, image: str, command: list[str]) -> str:
    return str(engine.containers.run(image, command, remove=True, stderr=True).decode())


def _tags(engine: docker.DockerClient, name: str) -> list[str]:
    return [t.split(":", 1)[1] for image in engine.images.list(name=name) for t in image.tags
            if t.startswith(name + ":")]


# (image name, command printing the version, regex capturing it from the output)
VERSIONED = [
    ("golang", ["go", "version"], r"go version go(\d+\.\d+\.\d+) linux/amd64"),
    ("node", ["node", "--version"], r"v(\d+\.\d+\.\d+)"),
    ("openjdk", ["java", "-version"], r'version "(\d+(?:\.\d+)+)"'),
    ("eclipse-temurin", ["java", "-version"], r'version "(\d+(?:\.\d+)+)"'),
]


@pytest.mark.parametrize(("name", "command", "pattern"), VERSIONED)
def test_every_version_tag_matches_the_version_inside(
    docker_client: docker.DockerClient, name: str, command: list[str], pattern: str
) -> None:
    tags = _tags(docker_client, name)
    assert tags, f"no {name} image"
    for tag in tags:
        match = re.search(pattern, _run(docker_client, f"{name}:{tag}", command))
        assert match, (name, tag)
        version = match.group(1)
        # The tag's leading version (1.26, 18-bookworm-slim, 17.0.15-jdk) is a prefix of it.
        tagged = re.match(r"\d+(\.\d+)*", tag)
        assert tagged, (name, tag)
        assert (version + ".").startswith(tagged.group(0) + "."), (name, tag, version)


def test_go_image_compiles_a_program(docker_client: docker.DockerClient) -> None:
    script = ("cd /tmp && printf 'package main\\nfunc main() { println(\"compiled\") }\\n' > m.go"
              " && go run m.go")
    assert "compiled" in _run(docker_client, "golang:1.26", ["sh", "-c", script])


def test_dockerfile_frontend_is_tagged_with_its_own_version(
    docker_client: docker.DockerClient,
) -> None:
    tags = _tags(docker_client, "docker/dockerfile")
    minor = [t for t in tags if re.fullmatch(r"1\.\d+", t)]
    assert "1" in tags and len(minor) == 1, tags
    assert docker_client.images.get("docker/dockerfile:1").id == docker_client.images.get(
        f"docker/dockerfile:{minor[0]}").id
