"""`devloop ci` on the Go and Node.js example (examples/hello), built with BuildKit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import REPO_ROOT, K8sTestEnv
from .test_engine_ci import devloop, namespaced_kubeconfig

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "examples" / "hello"


def test_ci_passes_on_the_go_and_node_example(
        testenv: K8sTestEnv, k8s_namespace: str, tmp_path: Path) -> None:
    project = tmp_path / "hello"
    shutil.copytree(EXAMPLE, project)
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", "10m"], cwd=project, kubeconfig=kubeconfig, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    # Both images came from BuildKit: the Go one through the `# syntax=` frontend with its
    # cache mount; hello-node is Ready only once it reached hello-go by its Service name.
    assert "Building with BuildKit" in output
    assert "RUN --mount=type=cache,target=/root/.cache/go-build" in output
    assert "npm ci --omit=dev" in output
    down = devloop(["down"], cwd=project, kubeconfig=kubeconfig, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr


def test_ci_names_a_missing_base_image_and_nothing_trails_the_error(
        testenv: K8sTestEnv, k8s_namespace: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text(
        "FROM devloop-no-such-base:4.2\nCOPY . /app\nCMD [\"true\"]\n")
    (project / "app.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n"
        "  - name: app\n    image: app\n")
    (project / "Tiltfile").write_text("k8s_yaml('app.yaml')\ndocker_build('app', 'app')\n")
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", "3m"], cwd=project, kubeconfig=kubeconfig, timeout=400)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert ("base image devloop-no-such-base:4.2 (app/Dockerfile:1: "
            "`FROM devloop-no-such-base:4.2`)") in output, output
    assert "docker pull devloop-no-such-base:4.2" in output
    # After the first ERROR line, no build step output follows (log or final summary).
    after_error = output[output.index("ERROR"):]
    assert "Step 1/" not in after_error and "#1 [" not in after_error, after_error
