"""The test environment itself: the path devloop takes (build, push, deploy, logs,
port-forward, exec) works end to end against the real engine, registry and cluster."""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import docker
import pytest
import yaml
from docker.models.images import Image
from kubernetes import client
from kubernetes.stream import stream

from .conftest import K8sTestEnv

pytestmark = pytest.mark.integration

T = TypeVar("T")

# Upper bounds for waiting on the cluster; they only turn a hang into a failure.
POD_READY_TIMEOUT_SECONDS = 180.0
PORT_FORWARD_TIMEOUT_SECONDS = 60.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Call probe until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}", pytrace=False)
        time.sleep(0.5)


@pytest.fixture
def core(testenv: K8sTestEnv) -> Iterator[client.CoreV1Api]:
    with testenv.api_client() as api:
        yield client.CoreV1Api(api)


@pytest.fixture
def apps(testenv: K8sTestEnv) -> Iterator[client.AppsV1Api]:
    with testenv.api_client() as api:
        yield client.AppsV1Api(api)


@pytest.fixture
def docker_client() -> Iterator[docker.DockerClient]:
    engine = docker.from_env()
    try:
        yield engine
    finally:
        engine.close()


def test_node_is_ready(core: client.CoreV1Api) -> None:
    nodes = core.list_node().items
    assert nodes
    for node in nodes:
        ready = [c.status for c in node.status.conditions or [] if c.type == "Ready"]
        assert ready == ["True"], node.metadata.name


def test_local_registry_hosting_configmap(core: client.CoreV1Api, testenv: K8sTestEnv) -> None:
    configmap = core.read_namespaced_config_map("local-registry-hosting", "kube-public")
    hosting = yaml.safe_load(configmap.data["localRegistryHosting.v1"])
    assert hosting["host"] == testenv.registry == "localhost:5000"
    assert hosting["help"]


def build_and_push(engine: docker.DockerClient, context: Path, repository: str, tag: str) -> Image:
    image, _ = engine.images.build(path=str(context), tag=f"{repository}:{tag}", rm=True)
    for event in engine.images.push(repository, tag=tag, stream=True, decode=True):
        assert "error" not in event, event
    return image


def running_ready_pod(core: client.CoreV1Api, namespace: str, selector: str) -> str | None:
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        if pod.status.phase == "Running" and conditions.get("Ready") == "True":
            return str(pod.metadata.name)
    return None


def deployment(name: str, image: str) -> client.V1Deployment:
    labels = {"app": name}
    container = client.V1Container(
        name="web",
        image=image,
        image_pull_policy="IfNotPresent",
        ports=[client.V1ContainerPort(container_port=8080)],
        # Ready only once httpd listens, so the port-forward below has something to reach.
        readiness_probe=client.V1Probe(
            tcp_socket=client.V1TCPSocketAction(port=8080), period_seconds=1
        ),
    )
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=1),
            ),
        ),
    )


def port_forward(
    testenv: K8sTestEnv, namespace: str, pod: str
) -> tuple[subprocess.Popen[str], int]:
    """Start `kubectl port-forward` to port 8080 of the pod; return it and the local port."""
    process = subprocess.Popen(
        [
            "kubectl",
            "port-forward",
            "--address",
            "127.0.0.1",
            "-n",
            namespace,
            f"pod/{pod}",
            ":8080",
        ],
        env=testenv.subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    # kubectl prints "Forwarding from 127.0.0.1:<port> -> 8080" once it listens.
    deadline = time.monotonic() + PORT_FORWARD_TIMEOUT_SECONDS
    for line in process.stdout:
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        if match:
            return process, int(match.group(1))
        if time.monotonic() > deadline:
            break
    process.kill()
    pytest.fail(f"kubectl port-forward did not start: {process.stdout.read()}", pytrace=False)


def test_build_push_deploy_logs_port_forward_exec(
    testenv: K8sTestEnv,
    k8s_namespace: str,
    core: client.CoreV1Api,
    apps: client.AppsV1Api,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    token = uuid.uuid4().hex[:12]
    body = f"hello from the devloop test environment {token}\n"
    (tmp_path / "index.html").write_text(body)
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\n"
        "COPY index.html /www/index.html\n"
        'CMD ["sh", "-c", "echo httpd-starting-on-8080; exec httpd -f -p 8080 -h /www"]\n'
    )
    repository = f"{testenv.registry}/devloop-testenv-smoke"
    image = build_and_push(docker_client, tmp_path, repository, token)
    try:
        apps.create_namespaced_deployment(k8s_namespace, deployment("web", f"{repository}:{token}"))
        pod = wait_for(
            "the web pod to be Running and Ready",
            lambda: running_ready_pod(core, k8s_namespace, "app=web"),
            POD_READY_TIMEOUT_SECONDS,
        )

        logs = core.read_namespaced_pod_log(pod, k8s_namespace, container="web")
        assert "httpd-starting-on-8080" in logs

        forwarder, local_port = port_forward(testenv, k8s_namespace, pod)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/index.html") as response:
                assert response.status == 200
                assert response.read().decode() == body
        finally:
            forwarder.terminate()
            forwarder.wait()

        output = stream(
            core.connect_get_namespaced_pod_exec,
            pod,
            k8s_namespace,
            container="web",
            command=["cat", "/www/index.html"],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        assert output == body
    finally:
        docker_client.images.remove(image.id, force=True)
