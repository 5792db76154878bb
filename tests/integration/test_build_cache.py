"""Images built by an earlier session are reused when their inputs are the same, with the
real Docker engine, registry and cluster: a second `devloop ci` does not build, deploys the
same image and passes; a newer base image, a changed file or an image the engine no longer
has makes it build again."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.projects_support import devloop, kubeconfig_for

pytestmark = pytest.mark.integration

REUSED = "unchanged since an earlier build of the same inputs: reusing"


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=300).stdout.strip()


def make_base(tag: str, text: str) -> str:
    """A local image `tag` (busybox plus a file), as a `docker pull` of a base would
    leave it; its ID."""
    result = subprocess.run(["docker", "build", "-q", "-t", tag, "-"],
                            input=f"FROM busybox\nRUN echo {text} > /base\n",
                            capture_output=True, text=True, check=True, timeout=300)
    assert result.stdout.strip()
    return docker("image", "inspect", "-f", "{{.Id}}", tag)


def deployed_image(kubeconfig: Path, namespace: str) -> str:
    out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace, "get",
                          "deployment", "app", "-o", "jsonpath={.spec.template.spec"
                          ".containers[0].image}"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return out.strip()


def test_a_second_session_reuses_the_image_built_from_the_same_inputs(
        testenv, k8s_namespace, tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_BUILD_CACHE", "1")
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    base = f"devloop-cache-base:{uuid.uuid4().hex[:8]}"
    make_base(base, "one")
    project = tmp_path / "p"
    project.mkdir()
    (project / "Dockerfile").write_text(
        f"FROM {base}\nCOPY index.html /www/index.html\n"
        'CMD ["sh", "-c", "cat /base /www/index.html; exec sleep 3600"]\n')
    (project / "index.html").write_text("v1\n")
    (project / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "main", "image": "cached-app"}]}}}}))
    (project / "Tiltfile").write_text("docker_build('cached-app', '.')\nk8s_yaml('app.yaml')\n")
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)

    def ci() -> str:
        result = devloop(["ci", "--timeout", "4m"], cwd=project, kubeconfig=kubeconfig)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        return output

    first = ci()
    assert "Building image cached-app" in first and REUSED not in first
    image = deployed_image(kubeconfig, k8s_namespace)

    # The same inputs in a new session: no build; the same image runs, and its log shows it.
    second = ci()
    assert REUSED in second and "Building image cached-app" not in second, second
    assert deployed_image(kubeconfig, k8s_namespace) == image
    assert "one" in second and "v1" in second

    # A newer base image under the same name (a `docker pull` would do this): built again.
    make_base(base, "two")
    third = ci()
    assert "Building image cached-app" in third and REUSED not in third, third
    assert "two" in third
    rebuilt = deployed_image(kubeconfig, k8s_namespace)
    assert rebuilt != image

    # A changed file: built again.
    (project / "index.html").write_text("v2\n")
    fourth = ci()
    assert "Building image cached-app" in fourth and "v2" in fourth, fourth

    # An image the engine no longer has (`docker image prune`) is built again, not deployed.
    (project / "index.html").write_text("v1\n")  # the inputs of the third run
    tag = rebuilt.rsplit(":", 1)[1]
    image_id = docker("image", "inspect", "-f", "{{.Id}}", f"localhost:5000/cached-app:{tag}")
    docker("image", "rm", "-f", image_id)
    fifth = ci()
    assert "Building image cached-app" in fifth and REUSED not in fifth, fifth
