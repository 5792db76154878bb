"""examples/compose end to end, and a Tiltfile that mixes Compose and Kubernetes resources."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.integration.test_compose import containers, devloop, free_port, volumes
from tests.integration.test_engine_ci import _get, namespaced_kubeconfig

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "compose"


def test_the_example_runs_with_redis_built_from_debian(testenv, tmp_path, monkeypatch):
    project_dir = tmp_path / "compose"
    shutil.copytree(EXAMPLE, project_dir)
    project = f"dlexample{uuid.uuid4().hex[:8]}"
    tiltfile = project_dir / "Tiltfile"
    tiltfile.write_text(tiltfile.read_text().replace('project_name="devloop-example"',
                                                     f'project_name="{project}"'))
    port = free_port()
    monkeypatch.setenv("WEB_PORT", str(port))
    try:
        result = devloop(["ci", "--timeout", "10m", "--port", str(free_port())],
                         cwd=project_dir, timeout=900)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout
        assert re.search(r"Hello from Compose! visits=\d+", _get(f"http://127.0.0.1:{port}/"))

        # Redis is tagged with the version its Debian package really contains.
        ref = (project_dir / "redis" / ".image-ref").read_text().strip()
        tag = ref.rsplit(":", 1)[1]
        assert re.fullmatch(r"\d+\.\d+\.\d+", tag), ref
        redis = containers(project)["redis"]
        version = subprocess.run(["docker", "exec", redis["Id"], "redis-server", "--version"],
                                 capture_output=True, text=True, check=True).stdout
        assert f"v={tag}" in version
        # `seed` (a `build:` section, built by Compose) ran once and exited 0.
        seed = containers(project)["seed"]
        assert (seed["State"]["Status"], seed["State"]["ExitCode"]) == ("exited", 0)
    finally:
        down = devloop(["down", "--volumes"], cwd=project_dir)
    assert down.returncode == 0, down.stdout + down.stderr
    assert containers(project) == {}
    assert volumes(project) == []


def test_a_mixed_tiltfile_runs_compose_and_kubernetes_in_one_ci(testenv, k8s_namespace,
                                                                  tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    project = f"dlmixed{uuid.uuid4().hex[:8]}"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        'FROM busybox\nCMD ["sh", "-c", "echo pod says hi; sleep 100000"]\n')
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          cache:
            image: busybox
            command: ["sh", "-c", "echo cache says hi; sleep 100000"]
        """))
    (tmp_path / "app.yaml").write_text(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: app}
        spec:
          selector: {matchLabels: {app: app}}
          template:
            metadata: {labels: {app: app}}
            spec:
              containers: [{name: app, image: dltest-mixed}]
        """))
    (tmp_path / "Tiltfile").write_text(textwrap.dedent(f"""\
        docker_compose('compose.yaml', project_name='{project}')
        docker_build('dltest-mixed', 'app')
        k8s_yaml('app.yaml')
        k8s_resource('app', resource_deps=['cache'])
        """))
    env_result = subprocess.run(
        [sys.executable, "-m", "devloop", "ci", "--timeout", "5m", "--port", str(free_port())],
        cwd=tmp_path, env={**testenv.subprocess_env(), "KUBECONFIG": str(kubeconfig)},
        capture_output=True, text=True, timeout=600, check=False)
    try:
        output = env_result.stdout + env_result.stderr
        assert env_result.returncode == 0, output
        assert "cache says hi" in output and "pod says hi" in output
        assert containers(project)["cache"]["State"]["Status"] == "running"
        apps = client.AppsV1Api(testenv.api_client())
        assert apps.read_namespaced_deployment("app", k8s_namespace).status.ready_replicas == 1
    finally:
        down = subprocess.run([sys.executable, "-m", "devloop", "down"], cwd=tmp_path,
                              env={**testenv.subprocess_env(), "KUBECONFIG": str(kubeconfig)},
                              capture_output=True, text=True, timeout=300, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    assert containers(project) == {}
