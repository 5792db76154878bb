"""The runtime read from shared watches on the test cluster: it outlives watches the API
server ends, and `ci` still fails a container that crashes a second after becoming Ready."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devloop.k8s.client import KubeClient, ObjectRef
from tests.integration.test_engine_ci import namespaced_kubeconfig

pytestmark = pytest.mark.integration


def _ci(project: Path, kubeconfig: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devloop", "ci", "--port", "0",
                           "--timeout", "3m"], cwd=project,
                          env={**os.environ, "PYTHONUNBUFFERED": "1",
                               "KUBECONFIG": str(kubeconfig), **env},
                          capture_output=True, text=True, timeout=400, check=False)


def _project(root: Path, command: str, probe: dict) -> Path:
    root.mkdir()
    (root / "Dockerfile").write_text(f"FROM busybox\nCMD {json.dumps(['sh', '-c', command])}\n")
    (root / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "main", "image": "app", "readinessProbe": probe}]}}}}))
    (root / "Tiltfile").write_text('docker_build("app", ".")\nk8s_yaml("app.yaml")\n')
    return root


def test_ci_fails_a_container_that_crashes_one_second_after_becoming_ready(
        testenv, k8s_namespace, tmp_path):
    # The probe marks the moment the kubelet finds the container ready; the container
    # then lives one more second.
    project = _project(
        tmp_path / "crash", "echo up; while [ ! -f /tmp/probed ]; do sleep 0.1; done; "
        "sleep 1; echo crashing one second after ready; exit 3",
        {"exec": {"command": ["touch", "/tmp/probed"]}, "periodSeconds": 1})
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = _ci(project, kubeconfig)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "crashing one second after ready" in output
    assert "ERROR" in output or "error" in output


def test_ci_follows_a_pod_through_watches_the_api_server_keeps_ending(
        testenv, k8s_namespace, tmp_path):
    # Every watch lasts one second on the server, and the pod turns Ready only after
    # several of them ended: the runtime sees it only if each watch resumes.
    project = _project(tmp_path / "slow", "echo serving; sleep 3600",
                       {"exec": {"command": ["true"]}, "initialDelaySeconds": 5,
                        "periodSeconds": 1})
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = _ci(project, kubeconfig, DEVLOOP_WATCH_TIMEOUT_SECONDS="1")
    assert result.returncode == 0, result.stdout + result.stderr


async def _until(condition, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_shared_pod_watch_sees_changes_after_the_server_ended_it(
        testenv, k8s_namespace):
    kube = await KubeClient.create(str(testenv.kubeconfig))
    kube.watch_timeout = 1  # the API server ends each watch after a second
    cache = kube.watch_cache("Pod", k8s_namespace)
    told: list[int] = []
    cache.listen(lambda: told.append(len(cache.objects)))
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "watched", "namespace": k8s_namespace,
                        "labels": {"app": "watched"}},
           "spec": {"terminationGracePeriodSeconds": 0, "containers": [
               {"name": "main", "image": "127.0.0.1:5000/devloop-absent:never"}]}}
    try:
        await _until(lambda: cache.synced, "the first list")
        await asyncio.sleep(3.5)  # three watches ended by the server
        await kube.server_side_apply(pod)
        await _until(lambda: cache.get("watched") is not None, "the new pod")
        assert [p["metadata"]["name"] for p in cache.select({"app": "watched"})] == ["watched"]
        await asyncio.sleep(2.5)
        await kube.delete(ObjectRef.of(pod))
        await _until(lambda: cache.get("watched") is None, "the pod's deletion")
        assert told[-1] == 0 and max(told) == 1
    finally:
        kube.close()
