"""The locally built base images stand in for the Docker Hub ones: unmodified Dockerfiles
`FROM python:3.11-slim` etc. build, and their RUN steps reach the package mirrors."""

from __future__ import annotations

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
