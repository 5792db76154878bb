"""Tilt projects as people write them run unchanged: the tutorial-shaped project, and one
test per run-time gap of issue 9, each against the real Docker, registry and cluster."""

from __future__ import annotations

import re

import pytest
from kubernetes import client

from .projects_support import (
    copy_project,
    deployment,
    devloop,
    devloop_up,
    http_get,
    kubeconfig_for,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.integration

CI_TIMEOUT = "8m"


def test_tutorial_project_passes_ci_and_its_forward_answers_http(testenv, k8s_namespace,
                                                                 tmp_path):
    """A Flask app FROM a base image of the same Tiltfile, a local_resource writing into
    the build context, a custom_build string command, port_forwards=8000 as an int."""
    project = copy_project("tutorial", tmp_path)
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", CI_TIMEOUT], cwd=project, kubeconfig=kubeconfig)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output
    # FROM tutorial-base: built first, never pulled from a public registry.
    assert output.index("Building image tutorial-base") < output.index(
        "Building image tutorial-app")
    assert "registry-1.docker.io" not in output
    # The custom_build string ran through the shell once and tagged $EXPECTED_REF.
    assert "Running custom build cmd 'docker build -t $EXPECTED_REF worker'" in output
    assert "worker ready" in output
    # port_forwards=8000: the pod's declared port, not port 0.
    assert re.search(r"Forwarding http://localhost:8000 -> app-[a-z0-9-]+:8000", output)

    with devloop_up(project, kubeconfig, tmp_path / "up.log"):
        status, body = wait_for(lambda: http_get("http://127.0.0.1:8000/"), 300,
                                "the app through port-forward 8000")
    assert status == 200
    assert body == "Hello from the tutorial app (built by a local_resource)\n"


def test_ci_fails_when_a_port_forward_cannot_connect(testenv, k8s_namespace, tmp_path):
    project = write_project(tmp_path / "deaf", (
        "k8s_yaml('k8s.yaml')\n"
        "k8s_resource('deaf', port_forwards='18790:9999')\n"),
        [deployment("deaf", "echo not listening on 9999; exec sleep 2147483647")])
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", "4m"], cwd=project, kubeconfig=kubeconfig)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ERROR: resource 'deaf': port-forward 18790 -> deaf-" in output
    assert "9999" in output and "refused" in output
    assert "Traceback" not in output


def test_a_context_that_is_not_local_is_refused_unless_allowed(testenv, k8s_namespace,
                                                               tmp_path):
    objects = [deployment("app", "echo up; exec sleep 2147483647")]
    project = write_project(tmp_path / "p", "k8s_yaml('k8s.yaml')\n", objects)
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path, context="staging")
    refused = devloop(["ci", "--timeout", "2m"], cwd=project, kubeconfig=kubeconfig)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert "Stop! 'staging' might be production." in output
    assert "allow_k8s_contexts('staging')" in output
    apps = client.AppsV1Api(testenv.api_client())
    assert apps.list_namespaced_deployment(k8s_namespace).items == []

    (project / "Tiltfile").write_text("allow_k8s_contexts('staging')\nk8s_yaml('k8s.yaml')\n")
    allowed = devloop(["ci", "--timeout", "3m"], cwd=project, kubeconfig=kubeconfig)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert [d.metadata.name for d in apps.list_namespaced_deployment(k8s_namespace).items] \
        == ["app"]


def test_down_says_what_it_waits_for_and_wait_false_returns_at_once(testenv, k8s_namespace,
                                                                    tmp_path):
    # `sleep` as PID 1 ignores SIGTERM: the pod takes its whole grace period to stop.
    objects = [deployment("stubborn", "echo up; exec sleep 2147483647", grace=12)]
    project = write_project(tmp_path / "p", "k8s_yaml('k8s.yaml')\n", objects)
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    assert devloop(["ci", "--timeout", "3m"], cwd=project, kubeconfig=kubeconfig).returncode == 0
    down = devloop(["down"], cwd=project, kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Waiting for Deployment/stubborn to be deleted" in down.stdout
    assert re.search(r"pod stubborn-[a-z0-9-]+ \(stopping, grace period 12s\)", down.stdout), \
        down.stdout

    assert devloop(["ci", "--timeout", "3m"], cwd=project, kubeconfig=kubeconfig).returncode == 0
    quick = devloop(["down", "--wait=false"], cwd=project, kubeconfig=kubeconfig)
    assert quick.returncode == 0, quick.stdout + quick.stderr
    assert "Not waiting for the deletion of Deployment/stubborn to finish (--wait=false)" \
        in quick.stdout
    assert "Waiting for" not in quick.stdout
    # Foreground deletion keeps the Deployment until its pod has stopped (12 s from now).
    still = client.AppsV1Api(testenv.api_client()).read_namespaced_deployment(
        "stubborn", k8s_namespace)
    assert still.metadata.deletion_timestamp is not None
