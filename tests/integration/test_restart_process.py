"""Process restart after a live update on the real cluster: a Tiltfile that loads
restart_process' docker_build_with_restart, with no extension repository and no helper
image, gets its Python server restarted in the same container after each sync."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from devloop.build import restart_wrapper as rw
from devloop.model import plan as p
from tests.integration.projects_support import (
    devloop_up,
    http_get,
    kubeconfig_for,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.integration

# The message is read once, at start: only a restarted process answers with a new one.
SERVER = """\
import http.server
import os

MESSAGE = open("/app/message.txt").read().strip()
PID = os.getpid()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{MESSAGE} pid={PID}".encode()
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("", 8000), Handler).serve_forever()
"""

DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY server.py message.txt ./
CMD ["python3", "-u", "server.py"]
"""

EXTENSION_TILTFILE = """\
load('ext://restart_process', 'docker_build_with_restart')
docker_build_with_restart('restart-app', '.', entrypoint=['python3', '-u', '/app/server.py'],
                          live_update=[sync('.', '/app')])
k8s_yaml('k8s.yaml')
k8s_resource('restart-app', port_forwards=['{port}:8000'])
"""

CUSTOM_TILTFILE = """\
load('ext://restart_process', 'custom_build_with_restart')
custom_build_with_restart('restart-app', 'docker build -q -t $EXPECTED_REF .', deps=['.'],
                          entrypoint='python3 -u /app/server.py',
                          live_update=[sync('.', '/app')])
k8s_yaml('k8s.yaml')
k8s_resource('restart-app', port_forwards=['{port}:8000'])
"""

NATIVE_TILTFILE = """\
docker_build('restart-app', '.', live_update=[sync('.', '/app'), restart_container()])
k8s_yaml('k8s.yaml')
k8s_resource('restart-app', port_forwards=['{port}:8000'])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deployment() -> dict[str, Any]:
    # No command: the image's ENTRYPOINT (the restart wrapper) runs.
    container = {"name": "main", "image": "restart-app", "ports": [{"containerPort": 8000}]}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "restart-app"},
            "spec": {"selector": {"matchLabels": {"app": "restart-app"}}, "template": {
                "metadata": {"labels": {"app": "restart-app"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}


def _answering(port: int, message: str) -> str:
    """The answer when it carries `message`, else ''."""
    status, body = http_get(f"http://127.0.0.1:{port}/")
    return body if status == 200 and body.startswith(f"{message} pid=") else ""


@pytest.mark.parametrize("tiltfile", [EXTENSION_TILTFILE, CUSTOM_TILTFILE, NATIVE_TILTFILE],
                         ids=["docker_build_with_restart", "custom_build_with_restart",
                              "restart_container"])
def test_a_live_update_restarts_the_process_in_the_same_container(
        testenv, k8s_namespace, tmp_path: Path, monkeypatch, tiltfile: str) -> None:
    # Reaching for the extension repository would fail: the built-in version must serve.
    monkeypatch.setenv("DEVLOOP_EXTENSIONS_REPO", str(tmp_path / "no-extension-repository"))
    monkeypatch.delenv("DEVLOOP_EXTENSIONS_DIR", raising=False)
    port = _free_port()
    project = write_project(tmp_path / "project", tiltfile.format(port=port), [_deployment()],
                            {"server.py": SERVER, "message.txt": "v1\n",
                             "Dockerfile": DOCKERFILE})
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    core = client.CoreV1Api(testenv.api_client())

    def pod() -> tuple[str, int, str]:
        (only,) = [item for item in core.list_namespaced_pod(
            k8s_namespace, label_selector="app=restart-app").items
            if item.metadata.deletion_timestamp is None]
        status = only.status.container_statuses[0]
        return only.metadata.name, status.restart_count, status.image

    log_path = tmp_path / "up.log"
    with devloop_up(project, kubeconfig, log_path):
        first = wait_for(lambda: _answering(port, "v1"), 420, "the first answer")
        before = wait_for(pod, 60, "one pod")
        assert "restart-helper" not in before[2]

        (project / "message.txt").write_text("v2\n")
        second = wait_for(lambda: _answering(port, "v2"), 90, "the restarted process")
        # Same pod, same container run (no restart counted), a new process that read the
        # synced file.
        assert pod() == before
        assert second.split()[1] != first.split()[1]
        output = log_path.read_text()
        assert "Live update: synced 1 file to" in output
        assert output.count("Building image restart-app") == 1

        (project / "message.txt").write_text("v3\n")
        wait_for(lambda: _answering(port, "v3"), 90, "a second restart")
        assert pod() == before
        assert "tiltdev/restart-helper" not in log_path.read_text()


def test_a_command_inherited_from_the_base_image_is_read_from_its_config(
        testenv, tmp_path: Path, monkeypatch) -> None:
    for name, value in testenv.env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim\nWORKDIR /app\n")
    image = p.DockerBuild("app", str(tmp_path), str(tmp_path / "Dockerfile"),
                          live_update=(p.SyncStep(str(tmp_path), "/app"),
                                       p.RestartContainerStep()))
    assert rw.command_of(image) == ["python3"]  # python:3.11-slim's CMD
    with pytest.raises(rw.WrapError, match="cannot inspect base image"):
        rw.inspect_command("localhost:5000/no-such-image-anywhere:1")
