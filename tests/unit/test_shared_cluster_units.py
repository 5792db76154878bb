"""Shared clusters, the pure parts: which registry a non-local context uses, pull secrets
attached only where they exist, and --namespace/--context reaching the Tiltfile."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from devloop.build import registry as reg
from devloop.k8s.errors import KubeError
from devloop.k8s.pull_secrets import (
    attach,
    delete_pull_secrets,
    pull_secret_manifest,
    secret_name,
)
from devloop.model import plan
from devloop.tiltfile.evaluator import Evaluation

ADVERTISED = reg.Registry(host="localhost:5000")
TILTFILE_REGISTRY = plan.Settings(default_registry="registry.example.com/team",
                                  default_registry_host_from_cluster="registry.internal/team")


def test_local_context_prefers_the_advertised_registry() -> None:
    chosen, note = reg.choose_registry(ADVERTISED, TILTFILE_REGISTRY, local_context=True)
    assert chosen == ADVERTISED
    assert "ignored" in note


def test_non_local_context_prefers_default_registry_and_its_cluster_host() -> None:
    chosen, note = reg.choose_registry(ADVERTISED, TILTFILE_REGISTRY, local_context=False)
    assert chosen == reg.Registry(host="registry.example.com/team",
                                  host_from_container_runtime="registry.internal/team")
    assert "the cluster pulls from registry.internal/team" in note
    assert "localhost:5000 is not used for this non-local context" in note
    assert reg.cluster_ref_for_local("registry.example.com/team/app:devloop-1", chosen) == \
        "registry.internal/team/app:devloop-1"


def test_non_local_context_without_default_registry_uses_the_advertised_one() -> None:
    chosen, _ = reg.choose_registry(ADVERTISED, plan.Settings(), local_context=False)
    assert chosen == ADVERTISED


class ForbiddenConfigMaps:
    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        raise KubeError('configmaps "local-registry-hosting" is forbidden', status=403)


async def test_user_who_may_not_read_kube_public_sees_no_advertisement() -> None:
    chosen, _ = await reg.discover_registry(ForbiddenConfigMaps(), TILTFILE_REGISTRY,
                                            local_context=False)
    assert chosen is not None and chosen.host == "registry.example.com/team"


def deployment(image: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web"}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}}


HOSTS = ("registry.example.com",)


def test_pull_secret_is_attached_to_pod_specs_pulling_from_the_registry() -> None:
    original = deployment("registry.example.com/app:devloop-1")
    out = attach(original, "devloop-registry-x", hosts=HOSTS, namespace="team")
    assert out["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "devloop-registry-x"}]
    assert "imagePullSecrets" not in original["spec"]["template"]["spec"]
    assert attach(out, "devloop-registry-x", hosts=HOSTS, namespace="team") is out


@pytest.mark.parametrize("manifest", [
    deployment("docker.io/library/redis:7"),
    deployment("registry.example.com/app:1", namespace="someone-else"),
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {}},
])
def test_pull_secret_is_not_attached_elsewhere(manifest: dict[str, Any]) -> None:
    assert attach(manifest, "s", hosts=HOSTS, namespace="team") is manifest


def test_cronjob_pod_spec_gets_the_pull_secret_next_to_existing_ones() -> None:
    job = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
           "spec": {"jobTemplate": {"spec": {"template": {"spec": {
               "imagePullSecrets": [{"name": "theirs"}],
               "initContainers": [{"name": "i", "image": "registry.example.com/init:1"}],
               "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    out = attach(job, "ours", hosts=HOSTS, namespace="team")
    pod = out["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "theirs"}, {"name": "ours"}]


def test_pull_secret_manifest_and_name() -> None:
    assert secret_name("Registry.Example.com:5000") == \
        "devloop-registry-registry.example.com-5000"
    manifest = pull_secret_manifest("s", "team", '{"auths": {}}')
    assert manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert manifest["metadata"]["labels"]["devloop.dev/pull-secret"] == "true"
    assert json.loads(base64.b64decode(manifest["data"][".dockerconfigjson"])) == {"auths": {}}


class FakeSecrets:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.selectors: list[tuple[str, str]] = []

    async def list_by_label(self, label_selector: str, kinds: Any = (), *,
                            namespace: str = "") -> list[dict[str, Any]]:
        self.selectors.append((label_selector, namespace))
        return [{"metadata": {"name": n}} for n in self.names]

    async def delete(self, obj_ref: Any, *, propagation: str = "Background") -> bool:
        name = obj_ref["metadata"]["name"]
        self.names.remove(name)
        return True


async def test_down_deletes_the_pull_secrets_of_its_namespace_only() -> None:
    fake, said = FakeSecrets(["devloop-registry-a"]), []
    deleted = await delete_pull_secrets(fake, "team", said.append)
    assert fake.names == [] and len(deleted) == 1
    assert fake.selectors == [("app.kubernetes.io/managed-by=devloop,"
                               "devloop.dev/pull-secret=true", "team")]


def test_namespace_and_context_flags_reach_the_tiltfile(
        tiltfile: Callable[..., Evaluation], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\ncontexts:\n"
        "- name: local\n  context: {cluster: c, user: u, namespace: mine}\n"
        "- name: gke_team_europe-west1_shared\n"
        "  context: {cluster: c, user: u, namespace: dev-alice}\n")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    text = "print('ctx=' + k8s_context() + ' ns=' + k8s_namespace())\n"
    assert "ctx=local ns=mine" in "".join(tiltfile(text).output)
    monkeypatch.setenv("DEVLOOP_CONTEXT", "gke_team_europe-west1_shared")
    evaluation = tiltfile(text)
    assert "ctx=gke_team_europe-west1_shared ns=dev-alice" in "".join(evaluation.output)
    assert evaluation.plan.settings.k8s_namespace == "dev-alice"
    monkeypatch.setenv("DEVLOOP_NAMESPACE", "dev-bob")
    evaluation = tiltfile(text)
    assert "ns=dev-bob" in "".join(evaluation.output)
    assert evaluation.plan.settings.k8s_namespace == "dev-bob"


class FakeKube:
    """What Cluster's pull-secret code uses of KubeClient: the namespace and apply."""

    def __init__(self) -> None:
        self.namespace = "team"
        self.applied: list[dict[str, Any]] = []

    async def server_side_apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.applied.append(obj)
        return obj


async def test_cluster_makes_and_refreshes_the_pull_secret_from_push_credentials() -> None:
    from devloop.build.credentials import Credentials
    from devloop.build.push import Pusher
    from devloop.engine.cluster import Cluster

    answers = [None, Credentials(host="registry.example.com", username="u", password="s3cret-new",
                                 source="auths")]
    pusher = Pusher(lambda: None, credentials=lambda host: answers[0])
    kube = FakeKube()
    cluster = Cluster(kube, reg.Registry(host="registry.example.com"), push=True,
                      pusher=pusher)
    said: list[str] = []
    await cluster._ensure_pull_secret(said.append)
    assert kube.applied == [] and cluster.pull_secret == ""  # no login yet: nothing to pull with

    # `docker login` later: the next push finds credentials, the secret follows them.
    answers.pop(0)
    pusher.forget("registry.example.com")
    pusher.credentials_for("registry.example.com")
    await cluster._refresh_pull_secret(said.append)
    assert [m["metadata"]["name"] for m in kube.applied] == [
        "devloop-registry-registry.example.com"]
    data = json.loads(base64.b64decode(kube.applied[0]["data"][".dockerconfigjson"]))
    assert data["auths"]["registry.example.com"]["password"] == "s3cret-new"
    assert cluster.pull_secret == "devloop-registry-registry.example.com"
    assert said and "s3cret-new" not in "\n".join(said)
    await cluster._refresh_pull_secret(said.append)
    assert len(kube.applied) == 1  # unchanged credentials: not applied again


async def test_pull_secret_of_a_registry_with_a_path_logs_in_to_its_host() -> None:
    from devloop.build.credentials import Credentials
    from devloop.build.push import Pusher
    from devloop.engine.cluster import Cluster

    found = Credentials(host="registry.example.com", username="u", password="p", source="x")
    kube = FakeKube()
    cluster = Cluster(kube, reg.Registry(host="registry.example.com/team",
                                         host_from_container_runtime="mirror.internal/team"),
                      push=True, pusher=Pusher(lambda: None, credentials=lambda host: found))
    await cluster._ensure_pull_secret(lambda line: None)
    data = json.loads(base64.b64decode(kube.applied[0]["data"][".dockerconfigjson"]))
    assert set(data["auths"]) == {"mirror.internal", "registry.example.com"}
    assert cluster.pull_secret == "devloop-registry-mirror.internal"
    deployed = attach(deployment("mirror.internal/team/app:1"), cluster.pull_secret,
                      hosts=cluster.pull_hosts, namespace="team")
    assert deployed["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "devloop-registry-mirror.internal"}]
