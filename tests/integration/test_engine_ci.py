"""`devloop ci`, `devloop down` and `devloop up` against the real Docker, registry and cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from kubernetes import client

# Shared with the other daemon tests, which import it from here.
from tests.integration.projects_support import (  # noqa: F401
    devloop,
    devloop_up,
    http_get,
)
from tests.integration.projects_support import kubeconfig_for as namespaced_kubeconfig
from tests.integration.projects_support import wait_for as _wait_for

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "shop"
CI_TIMEOUT = "8m"


def managed_objects(api: client.ApiClient, namespace: str) -> list[str]:
    selector = "app.kubernetes.io/managed-by=devloop"
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    found = [f"deployment/{d.metadata.name}" for d in
             apps.list_namespaced_deployment(namespace, label_selector=selector).items]
    found += [f"service/{s.metadata.name}" for s in
              core.list_namespaced_service(namespace, label_selector=selector).items]
    found += [f"configmap/{c.metadata.name}" for c in
              core.list_namespaced_config_map(namespace, label_selector=selector).items]
    return found


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A private copy of the example, so tests can edit its sources."""
    target = tmp_path / "shop"
    shutil.copytree(EXAMPLE, target)
    return target


def test_ci_brings_the_example_up_and_down_removes_it(testenv, k8s_namespace, shop, tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", CI_TIMEOUT], cwd=shop, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "sources compile" in result.stdout  # the local_resource ran
    assert "api v1 listening" in result.stdout  # runtime logs were streamed

    api = testenv.api_client()
    assert sorted(managed_objects(api, k8s_namespace)) == [
        "configmap/web-config", "deployment/api", "deployment/web", "deployment/worker",
        "service/api", "service/web"]
    deployment = client.AppsV1Api(api).read_namespaced_deployment("api", k8s_namespace)
    image = deployment.spec.template.spec.containers[0].image
    assert image.startswith("localhost:5000/shop-api:devloop-")

    down = devloop(["down"], cwd=shop, kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stdout + down.stderr
    assert managed_objects(api, k8s_namespace) == []


def test_down_leaves_objects_devloop_did_not_create(testenv, k8s_namespace, shop, tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    api = testenv.api_client()
    client.CoreV1Api(api).create_namespaced_config_map(k8s_namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="web-config"), data={"PORT": "1"}))
    down = devloop(["down"], cwd=shop, kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "not created by devloop" in down.stdout
    client.CoreV1Api(api).read_namespaced_config_map("web-config", k8s_namespace)


def test_ci_fails_on_a_crash_looping_container_and_prints_its_log(testenv, k8s_namespace,
                                                                  tmp_path):
    project = tmp_path / "crash"
    project.mkdir()
    (project / "Dockerfile").write_text(
        'FROM busybox\nCMD ["sh", "-c", "echo about to crash: config missing; exit 3"]\n')
    (project / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "crasher"},
        "spec": {"selector": {"matchLabels": {"app": "crasher"}}, "template": {
            "metadata": {"labels": {"app": "crasher"}},
            "spec": {"containers": [{"name": "main", "image": "crasher"}]}}}}))
    (project / "Tiltfile").write_text('docker_build("crasher", ".")\nk8s_yaml("app.yaml")\n')
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", CI_TIMEOUT], cwd=project, kubeconfig=kubeconfig)
    assert result.returncode != 0
    assert "ERROR: resource 'crasher'" in result.stdout
    assert "CrashLoopBackOff" in result.stdout or "Error" in result.stdout
    assert "about to crash: config missing" in result.stdout


def _get(url: str) -> str:
    return http_get(url)[1]


def test_up_rebuilds_only_the_edited_image_and_serves_the_new_response(
        testenv, k8s_namespace, shop, tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    with devloop_up(shop, kubeconfig, log_path, "--", "--no-worker"):
        first = _wait_for(lambda: '"v1"' in _get("http://127.0.0.1:18081/") and
                          _get("http://127.0.0.1:18081/"), 420, "the api through its forward")
        assert '"coffee"' in first
        apps = client.AppsV1Api(testenv.api_client())
        # web waits for api (resource_deps), so it may not be applied yet.
        _wait_for(lambda: "<h1>Shop</h1>" in _get("http://127.0.0.1:18080/"), 300, "the web")
        web_image = apps.read_namespaced_deployment(
            "web", k8s_namespace).spec.template.spec.containers[0].image

        app = shop / "api" / "app.py"
        app.write_text(app.read_text().replace('VERSION = "v1"', 'VERSION = "v2"'))

        _wait_for(lambda: '"v2"' in _get("http://127.0.0.1:18081/"), 300,
                  "the new api response through the re-targeted forward")
        assert apps.read_namespaced_deployment(
            "web", k8s_namespace).spec.template.spec.containers[0].image == web_image
        output = log_path.read_text()
        assert "changed files:" in output and "app.py" in output


def test_tiltfile_error_mid_session_keeps_services_up_and_recovers(
        testenv, k8s_namespace, shop, tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    with devloop_up(shop, kubeconfig, log_path, "--", "--no-worker"):
        _wait_for(lambda: '"v1"' in _get("http://127.0.0.1:18081/"), 420, "the api")
        tiltfile = shop / "Tiltfile"
        good = tiltfile.read_text()
        tiltfile.write_text(good + "\nk8s_resource('api', port_forwards=\n")
        _wait_for(lambda: "Tiltfile:" in log_path.read_text() and "syntax error" in
                  log_path.read_text(), 60, "the Tiltfile error in the log")
        assert '"v1"' in _get("http://127.0.0.1:18081/")  # still serving
        tiltfile.write_text(good)
        _wait_for(lambda: "Tiltfile loaded" in log_path.read_text(), 60, "the reload")
        assert '"v1"' in _get("http://127.0.0.1:18081/")


def test_resource_removed_from_the_tiltfile_is_deleted_on_reload(
        testenv, k8s_namespace, shop, tmp_path):
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    apps = client.AppsV1Api(testenv.api_client())

    def worker_exists() -> bool:
        names = [d.metadata.name for d in apps.list_namespaced_deployment(k8s_namespace).items]
        return "worker" in names

    with devloop_up(shop, kubeconfig, tmp_path / "up.log"):
        _wait_for(worker_exists, 420, "the worker deployment")
        tiltfile = shop / "Tiltfile"
        tiltfile.write_text(tiltfile.read_text().replace(
            'if not cfg.get("no-worker", False):', "if False:"))
        _wait_for(lambda: not worker_exists(), 120, "the worker deployment to be deleted")
        assert "Deleted Deployment/worker" in (tmp_path / "up.log").read_text()
