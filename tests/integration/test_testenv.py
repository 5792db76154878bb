"""The test environment itself: the path devloop takes (build, push, deploy, logs,
port-forward, exec) works end to end against the real engine, registry and cluster."""

from __future__ import annotations

import json
import re
import subprocess
import sys
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

from .conftest import REPO_ROOT, K8sTestEnv

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


def _service_pod_and_client(namespace: str, registry: str) -> tuple[
        client.V1Deployment, client.V1Service, client.V1Pod]:
    labels = {"app": "api"}
    server = client.V1Container(
        name="api", image=f"{registry}/busybox:latest",
        command=["sh", "-c",
                 "mkdir -p /www && echo api-ok > /www/index.html && exec httpd -f -p 8080 -h /www"],
        readiness_probe=client.V1Probe(tcp_socket=client.V1TCPSocketAction(port=8080),
                                       period_seconds=1))
    api = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="api", labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[server], termination_grace_period_seconds=1))))
    service = client.V1Service(
        metadata=client.V1ObjectMeta(name="api"),
        spec=client.V1ServiceSpec(selector=labels,
                                  ports=[client.V1ServicePort(port=8080, target_port=8080)]))
    url = f"http://api.{namespace}.svc.cluster.local:8080/"
    # urlopen raises on anything but a 2xx answer. (busybox-static cannot resolve names:
    # static glibc has no NSS modules.)
    script = ("import time, urllib.request\n"
              "for attempt in range(60):\n"
              "    try:\n"
              f"        print(urllib.request.urlopen({url!r}, timeout=3).read().decode(), end='')\n"
              "        break\n"
              "    except OSError as exc:\n"
              "        print('retrying:', exc, flush=True)\n"
              "        time.sleep(1)\n"
              "else:\n"
              "    raise SystemExit(1)\n")
    caller = client.V1Container(name="caller", image=f"{registry}/python:3.11-slim",
                                command=["python3", "-c", script])
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="caller"),
                       spec=client.V1PodSpec(containers=[caller], restart_policy="Never"))
    return api, service, pod


def test_pod_reaches_another_service_by_its_dns_name(
    testenv: K8sTestEnv, k8s_namespace: str, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    api, service, caller = _service_pod_and_client(k8s_namespace, testenv.registry)
    apps.create_namespaced_deployment(k8s_namespace, api)
    core.create_namespaced_service(k8s_namespace, service)
    wait_for("the api pod to be Ready",
             lambda: running_ready_pod(core, k8s_namespace, "app=api"), POD_READY_TIMEOUT_SECONDS)
    core.create_namespaced_pod(k8s_namespace, caller)

    def finished() -> str | None:
        phase = core.read_namespaced_pod("caller", k8s_namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for("the caller pod to finish", finished, POD_READY_TIMEOUT_SECONDS)
    logs = core.read_namespaced_pod_log("caller", k8s_namespace)
    assert phase == "Succeeded", logs
    assert logs.splitlines()[-1] == "api-ok", logs
    # The pod's resolver is the cluster's: the kube-dns Service, with the cluster search path.
    dns = core.read_namespaced_service("kube-dns", "kube-system")
    assert dns.spec.cluster_ip == "10.0.0.10"


def test_helm_renders_a_local_chart_through_the_tiltfile(
    testenv: K8sTestEnv, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "deployment.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n"
        "spec:\n  replicas: {{ .Values.replicas }}\n  selector:\n    matchLabels: {app: web}\n"
        "  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n"
        "      - name: web\n        image: busybox\n")
    (tmp_path / "Tiltfile").write_text(
        "k8s_yaml(helm('chart', name='rel', namespace='shop', set=['replicas=3']))\n")
    result = subprocess.run(
        [sys.executable, "-m", "devloop", "tiltfile-result"], cwd=tmp_path,
        env=testenv.subprocess_env(), capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    objects = [o["manifest"] for r in json.loads(result.stdout)["resources"]
               for o in r["objects"]]
    rendered = [o for o in objects if o.get("kind") == "Deployment"]
    assert len(rendered) == 1, result.stdout
    assert rendered[0]["metadata"]["name"] == "rel-web"
    assert rendered[0]["metadata"]["namespace"] == "shop"
    assert rendered[0]["spec"]["replicas"] == 3


def test_status_lists_the_pinned_tool_versions(testenv: K8sTestEnv) -> None:
    status = subprocess.run([str(REPO_ROOT / "scripts" / "testenv"), "status"],
                            capture_output=True, text=True, timeout=120, check=True).stdout
    for expected in (r"buildx:\s+github\.com/docker/buildx v\d+\.\d+\.\d+",
                     r"helm:\s+v3\.\d+\.\d+", r"coredns:\s+CoreDNS-\d+\.\d+\.\d+",
                     r"kube-proxy: Kubernetes v1\.\d+\.\d+", r"docker/dockerfile:1\.\d+",
                     r"kube-proxy:\s+running", r"coredns:\s+running"):
        assert re.search(expected, status), (expected, status)
