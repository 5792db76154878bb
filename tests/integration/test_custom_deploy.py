"""k8s_custom_deploy against the real cluster: a command deploys, devloop watches the pods."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from .test_engine_ci import devloop, namespaced_kubeconfig

pytestmark = pytest.mark.integration


def test_custom_deploy_gets_its_image_deployed_watched_and_deleted(testenv, k8s_namespace,
                                                                   tmp_path):
    project = tmp_path / "custom"
    project.mkdir()
    (project / "index.html").write_text("custom deploy works\n")
    (project / "Dockerfile").write_text(
        "FROM busybox\nCOPY index.html /www/index.html\n"
        'CMD ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"]\n')
    (project / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello"},
        "spec": {"selector": {"matchLabels": {"app": "hello"}}, "template": {
            "metadata": {"labels": {"app": "hello"}},
            "spec": {"containers": [{"name": "web", "image": "IMAGE",
                                     "readinessProbe": {"tcpSocket": {"port": 8080},
                                                        "periodSeconds": 1}}]}}}}))
    (project / "Tiltfile").write_text("""
docker_build("hello-image", ".")
k8s_custom_deploy(
    "hello",
    apply_cmd="sed \\"s|IMAGE|$TILT_IMAGE_0|\\" app.yaml | kubectl apply -f - -o yaml",
    delete_cmd="kubectl delete -f app.yaml --ignore-not-found",
    deps=["app.yaml"],
    image_deps=["hello-image"],
)
""")
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    result = devloop(["ci", "--timeout", "5m"], cwd=project, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "apply_cmd deployed 1 objects" in result.stdout
    apps = client.AppsV1Api(testenv.api_client())
    image = apps.read_namespaced_deployment(
        "hello", k8s_namespace).spec.template.spec.containers[0].image
    assert image.startswith("localhost:5000/hello-image:devloop-")

    down = devloop(["down"], cwd=project, kubeconfig=kubeconfig)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "hello" not in [d.metadata.name for d in
                           apps.list_namespaced_deployment(k8s_namespace).items]
