"""Live update against the real cluster: `devloop up` on a copy of the example, whose api
syncs its sources into the running container and reloads itself."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from tests.integration import projects_support
from tests.integration.test_engine_ci import (
    EXAMPLE,
    _get,
    _wait_for,
    devloop_up,
    namespaced_kubeconfig,
)

pytestmark = pytest.mark.integration

FAILING_RUN_STEP = ('    run("if [ -e /app/broken ]; then echo refusing: broken marker >&2; '
                    'exit 1; fi"),\n')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, int]:
    """A private copy of the example on free local ports (tests may run beside others'),
    and the api's local port."""
    target = tmp_path / "shop"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__"))
    api_port, web_port = _free_port(), _free_port()
    tiltfile = target / "Tiltfile"
    text = tiltfile.read_text()
    assert '"18081:8080"' in text and "port_forward(18080," in text
    tiltfile.write_text(text.replace('"18081:8080"', f'"{api_port}:8080"').replace(
        "port_forward(18080,", f"port_forward({web_port},"))
    return target, api_port


class Api:
    """The api's pod as the cluster sees it."""

    def __init__(self, testenv, namespace: str) -> None:
        self.core = client.CoreV1Api(testenv.api_client())
        self.namespace = namespace

    def pods(self) -> list[client.V1Pod]:
        return [pod for pod in self.core.list_namespaced_pod(
            self.namespace, label_selector="app=shop,component=api").items
            if pod.metadata.deletion_timestamp is None]

    def only_pod(self) -> tuple[str, int]:
        (pod,) = self.pods()
        return pod.metadata.name, pod.status.container_statuses[0].restart_count

    def wait_for_only_pod(self) -> tuple[str, int]:
        """`only_pod` once the pod's status reports its container: the forward opens on
        the container's Started event, before that report."""
        return _wait_for(self.only_pod, 60, "one api pod with its container's status")

    def files(self) -> list[str]:
        name, _ = self.only_pod()
        out = stream(self.core.connect_get_namespaced_pod_exec, name, self.namespace,
                     command=["ls", "/app"], stderr=True, stdin=False, stdout=True, tty=False)
        return out.split()


def _after(log_path: Path, marker: str) -> str:
    """The log after the first `marker` in it."""
    output = log_path.read_text()
    return output[output.index(marker):]


def _serving(port: int, text: str) -> bool:
    return text in _get(f"http://127.0.0.1:{port}/")


def test_edits_and_deletions_are_live_updated_and_fall_back_on_rebuilds(
        testenv, k8s_namespace, shop, tmp_path):
    project, port = shop
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    api = Api(testenv, k8s_namespace)
    with devloop_up(project, kubeconfig, log_path, "--", "--no-worker"):
        _wait_for(lambda: _serving(port, '"v1"'), 420, "the api through its forward")
        pod_before = api.wait_for_only_pod()

        app = project / "api" / "app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))
        _wait_for(lambda: _serving(port, '"v2"'), 60, "the edited api answering")
        assert api.only_pod() == pod_before  # same pod, no restart: files were synced
        assert "Live update: synced 1 file to" in log_path.read_text()

        extra = project / "api" / "notes.txt"
        extra.write_text("synced\n")
        _wait_for(lambda: "notes.txt" in api.files(), 60, "the new file in the container")
        extra.unlink()
        _wait_for(lambda: "notes.txt" not in api.files(), 60, "the file deleted there too")
        assert api.only_pod() == pod_before

        dockerfile = project / "api" / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + "# rebuilt\n")
        _wait_for(lambda: any(pod.metadata.name != pod_before[0] for pod in api.pods()),
                  300, "a new api pod from the rebuilt image")
        _wait_for(lambda: len(api.pods()) == 1 and _serving(port, '"v2"'), 300,
                  "the rebuilt api answering")
        output = log_path.read_text()
        assert "matches fall_back_on of image shop-api. Full rebuild." in output
        assert output.count("Building image shop-api") == 2


def test_a_failing_run_step_alerts_and_the_next_good_change_recovers(
        testenv, k8s_namespace, shop, tmp_path):
    project, port = shop
    tiltfile = project / "Tiltfile"
    tiltfile.write_text(tiltfile.read_text().replace(
        '    sync("api/", "/app/"),\n', '    sync("api/", "/app/"),\n' + FAILING_RUN_STEP))
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    api = Api(testenv, k8s_namespace)
    with devloop_up(project, kubeconfig, log_path, "--", "--no-worker"):
        _wait_for(lambda: _serving(port, '"v1"'), 420, "the api through its forward")
        pod_before = api.wait_for_only_pod()

        (project / "api" / "broken").write_text("x\n")
        _wait_for(lambda: "refusing: broken marker" in log_path.read_text(), 60,
                  "the run step's output")
        _wait_for(lambda: "ERROR: live update:" in log_path.read_text(), 60,
                  "the failed update")
        assert "exit code 1" in log_path.read_text()

        (project / "api" / "broken").unlink()
        app = project / "api" / "app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v3"'))
        _wait_for(lambda: _serving(port, '"v3"'), 60, "the recovered api answering")
        # The api reloads once the files land, before the run step's exec has returned.
        _wait_for(lambda: "Live update: done" in _after(log_path, "ERROR: live update:"), 60,
                  "the recovered update's end")
        output = log_path.read_text()
        assert "broken" not in api.files()
        assert api.only_pod() == pod_before
        assert output.count("Building image shop-api") == 1


STARTING_TILTFILE = """\
docker_build('slow-start', '.', live_update=[sync('message.txt', '/app/message.txt')])
k8s_yaml('k8s.yaml')
k8s_resource('slow-start')
"""


def _slow_start() -> dict[str, Any]:
    """A Deployment whose app container waits for an init container's few seconds first,
    so it is being started (PodInitializing) for that long after the deploy."""
    deployment = projects_support.deployment("slow-start", "sleep 3600", image="slow-start")
    spec = deployment["spec"]["template"]["spec"]
    spec["initContainers"] = [{"name": "init", "image": projects_support.CLUSTER_BUSYBOX,
                               "command": ["sleep", "5"]}]
    return deployment


def test_a_change_saved_while_the_container_is_being_started_is_live_updated_once_it_runs(
        testenv, k8s_namespace, tmp_path):
    project = projects_support.write_project(
        tmp_path / "project", STARTING_TILTFILE, [_slow_start()],
        {"Dockerfile": "FROM busybox\nCOPY message.txt /app/message.txt\n",
         "message.txt": "v1\n"})
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    core = client.CoreV1Api(testenv.api_client())
    log_path = tmp_path / "up.log"

    def initializing() -> str:
        (pod,) = core.list_namespaced_pod(k8s_namespace, label_selector="app=slow-start").items
        (status,) = pod.status.container_statuses
        waiting = status.state.waiting
        return pod.metadata.name if waiting and waiting.reason == "PodInitializing" else ""

    def message(pod: str) -> str:
        return stream(core.connect_get_namespaced_pod_exec, pod, k8s_namespace,
                      container="main", command=["cat", "/app/message.txt"], stderr=True,
                      stdin=False, stdout=True, tty=False)

    with devloop_up(project, kubeconfig, log_path):
        pod = _wait_for(initializing, 300, "the pod running its init container")
        (project / "message.txt").write_text("v2\n")
        _wait_for(lambda: "Live update: done" in log_path.read_text(), 60, "the live update")
        assert message(pod) == "v2\n"
        output = log_path.read_text()
        assert "Live update: waiting for container " in output
        assert output.count("Building image slow-start") == 1
