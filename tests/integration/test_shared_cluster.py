"""devloop on a shared cluster: a TLS + password registry, developers confined to their own
namespaces by RBAC, a context named like a GKE cluster (scripts/testenv.d/registry-tls.sh).

Every devloop run here uses a developer's kubeconfig (a service account token with rights
only in devloop-dev-alice or devloop-dev-bob) and a Docker config made by a real
`docker login`; the cluster's containerd pulls from the registry over TLS with the testenv
CA and the image pull secret devloop creates. The namespaces belong to the environment, so
each test names its objects uniquely and runs `devloop down` itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from devloop.build import registry as reg
from devloop.build.docker_builder import BuiltImage, PushError
from devloop.build.push import Pusher
from tests.integration.conftest import K8sTestEnv
from tests.integration.projects_support import (
    deployment,
    devloop,
    interrupt_and_wait,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.integration

PULL_SECRET = "devloop-registry-registry.devloop.test"
LEASE = "devloop-session"


@dataclass(frozen=True)
class Shared:
    registry: str
    user: str
    password: str
    context: str
    kubeconfigs: dict[str, Path]
    namespaces: dict[str, str]


@pytest.fixture(scope="module")
def shared(testenv: K8sTestEnv) -> Shared:
    env = testenv.env
    missing = [name for name in ("DEVLOOP_TLS_REGISTRY", "DEVLOOP_TLS_REGISTRY_PASSWORD",
                                 "DEVLOOP_SHARED_KUBECONFIG_ALICE") if not env.get(name)]
    if missing:
        pytest.fail(f"scripts/testenv env does not export {missing}", pytrace=False)
    return Shared(
        registry=env["DEVLOOP_TLS_REGISTRY"], user=env["DEVLOOP_TLS_REGISTRY_USER"],
        password=env["DEVLOOP_TLS_REGISTRY_PASSWORD"], context=env["DEVLOOP_SHARED_CONTEXT"],
        kubeconfigs={who: Path(env[f"DEVLOOP_SHARED_KUBECONFIG_{who.upper()}"])
                     for who in ("alice", "bob")},
        namespaces={who: env[f"DEVLOOP_SHARED_NAMESPACE_{who.upper()}"]
                    for who in ("alice", "bob")})


@pytest.fixture
def docker_login(shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Docker config holding the registry login, made by `docker login` as a developer
    makes it; devloop and the docker CLI find it through DOCKER_CONFIG."""
    config = tmp_path / "docker-config"
    config.mkdir()
    done = subprocess.run(["docker", "--config", str(config), "login", "-u", shared.user,
                           "--password-stdin", shared.registry], input=shared.password,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


@pytest.fixture
def admin(testenv: K8sTestEnv) -> Iterator[client.CoreV1Api]:
    with testenv.api_client() as api:
        yield client.CoreV1Api(api)


def project(directory: Path, *, name: str, image: str, allow: str = "", content: str = "v1"
            ) -> Path:
    """A Tiltfile building `image` FROM the environment's busybox and deploying it as
    Deployment `name`; `allow` is the allow_k8s_contexts line (none when empty)."""
    tiltfile = (f"{allow}\n"
                "default_registry('registry.devloop.test')\n"
                f"docker_build('{image}', '.')\n"
                "k8s_yaml('k8s.yaml')\n")
    return write_project(
        directory, tiltfile,
        [deployment(name, "cat /app/content.txt; echo ready; exec sleep 3600", image=image)],
        files={"Dockerfile": "FROM busybox:latest\nCOPY content.txt /app/content.txt\n",
               "content.txt": content + "\n"})


def allow(shared: Shared) -> str:
    return f"allow_k8s_contexts('{shared.context}')"


def run(args: list[str], directory: Path, kubeconfig: Path, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return devloop(args, cwd=directory, kubeconfig=kubeconfig, timeout=timeout)


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def read_or_none(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def deployments(testenv: K8sTestEnv, namespace: str) -> dict[str, Any]:
    with testenv.api_client() as api:
        items = client.AppsV1Api(api).list_namespaced_deployment(namespace).items
    return {d.metadata.name: d for d in items}


def lease(testenv: K8sTestEnv, namespace: str) -> Any:
    with testenv.api_client() as api:
        return read_or_none(client.CoordinationV1Api(api).read_namespaced_lease, LEASE,
                            namespace)


def pushed_summaries(text: str) -> list[str]:
    return [line for line in text.splitlines() if "Pushed registry.devloop.test/" in line]


def test_push_and_deploy_through_the_tls_registry_with_a_pull_secret(
        testenv: K8sTestEnv, shared: Shared, docker_login: Path, admin: client.CoreV1Api,
        tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    name, image = f"tls-web-{uid}", f"shared-app-{uid}"
    namespace, kubeconfig = shared.namespaces["alice"], shared.kubeconfigs["alice"]
    # Contents unique to this run: a layer pushed by an earlier run would be mounted from
    # its repository instead of sent.
    directory = project(tmp_path / "app", name=name, image=image, allow=allow(shared),
                        content=f"v1 {uid}")
    try:
        first = run(["ci", "--timeout", "180s"], directory, kubeconfig)
        text = output(first)
        assert first.returncode == 0, text
        assert shared.password not in text
        assert f"Image pull secret {PULL_SECRET} in namespace {namespace}" in text
        assert "Using default registry from Tiltfile: registry.devloop.test" in text
        assert len(pushed_summaries(text)) == 1, text

        pod_spec = deployments(testenv, namespace)[name].spec.template.spec
        assert pod_spec.image_pull_secrets[0].name == PULL_SECRET
        assert pod_spec.containers[0].image.startswith(f"registry.devloop.test/{image}:")
        secret = admin.read_namespaced_secret(PULL_SECRET, namespace)
        assert secret.type == "kubernetes.io/dockerconfigjson"
        pods = admin.list_namespaced_pod(namespace, label_selector=f"app={name}").items
        assert any(p.status.phase == "Running" for p in pods)
        assert lease(testenv, namespace) is None  # ci released its lock on exit

        # The registry really wants the secret: a pod without it cannot pull the image.
        bare = f"no-secret-{uid}"
        admin.create_namespaced_pod(namespace, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": bare},
            "spec": {"containers": [{"name": "main", "image": pod_spec.containers[0].image,
                                     "imagePullPolicy": "Always"}]}})
        try:
            def pull_refused() -> str:
                statuses = admin.read_namespaced_pod(bare, namespace).status.container_statuses
                waiting = statuses[0].state.waiting if statuses else None
                if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                    return str(waiting.message)
                return ""

            message = wait_for(pull_refused, 90, "the pull without a secret to fail")
            assert "401" in message or "nauthorized" in message, message
        finally:
            admin.delete_namespaced_pod(bare, namespace, grace_period_seconds=0)

        # A rebuild that changes one file sends one layer; the base is already there.
        (directory / "content.txt").write_text(f"v2 {uid}\n")
        second = run(["ci", "--timeout", "180s"], directory, kubeconfig)
        assert second.returncode == 0, output(second)
        summary = pushed_summaries(output(second))
        assert len(summary) == 1 and "sent 1 of" in summary[0], summary
        assert "already in the registry" in summary[0], summary
    finally:
        down = run(["down"], directory, kubeconfig)
    assert down.returncode == 0, output(down)
    assert name not in deployments(testenv, namespace)
    assert read_or_none(admin.read_namespaced_secret, PULL_SECRET, namespace) is None


def test_wrong_credentials_are_a_clear_error_not_a_hang(
        shared: Shared, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        testenv: K8sTestEnv) -> None:
    config = tmp_path / "docker-config"
    config.mkdir()
    wrong = "not-the-password"
    (config / "config.json").write_text(json.dumps({"auths": {shared.registry: {
        "auth": base64.b64encode(f"{shared.user}:{wrong}".encode()).decode()}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    uid = uuid.uuid4().hex[:8]
    directory = project(tmp_path / "app", name=f"wrong-{uid}", image=f"wrong-app-{uid}",
                        allow=allow(shared))
    kubeconfig = shared.kubeconfigs["alice"]
    try:
        # The subprocess timeout is the hang detector: a refused login must end `ci` itself.
        done = run(["ci", "--timeout", "300s"], directory, kubeconfig, timeout=240)
        text = output(done)
        assert done.returncode != 0, text
        assert "registry.devloop.test refused the credentials from auths[" in text, text
        assert "docker login registry.devloop.test" in text
        assert wrong not in text
        assert "retrying" not in text  # a refusal is not retried
    finally:
        run(["down"], directory, kubeconfig)


def test_remote_looking_context_is_refused_without_allow_k8s_contexts(
        testenv: K8sTestEnv, shared: Shared, docker_login: Path, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    name = f"refused-{uid}"
    directory = project(tmp_path / "app", name=name, image=f"refused-app-{uid}")
    kubeconfig = shared.kubeconfigs["alice"]
    for command in (["ci", "--timeout", "60s"], ["down"]):
        done = run(command, directory, kubeconfig, timeout=120)
        text = output(done)
        assert done.returncode != 0, text
        assert f"Stop! '{shared.context}' might be production." in text, text
        assert f"allow_k8s_contexts('{shared.context}')" in text
    assert name not in deployments(testenv, shared.namespaces["alice"])
    assert lease(testenv, shared.namespaces["alice"]) is None


def test_two_developers_in_two_namespaces_never_touch_each_other(
        testenv: K8sTestEnv, shared: Shared, docker_login: Path, admin: client.CoreV1Api,
        tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    name = f"team-web-{uid}"  # the same Tiltfile, objects and names for both
    dirs = {who: project(tmp_path / who, name=name, image=f"team-app-{uid}",
                         allow=allow(shared), content=who) for who in ("alice", "bob")}
    alice_ns, bob_ns = shared.namespaces["alice"], shared.namespaces["bob"]
    try:
        # Both at once, as two developers would.
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        procs = {who: subprocess.Popen(
            [sys.executable, "-m", "devloop", "ci", "--timeout", "180s"], cwd=dirs[who],
            env={**env, "KUBECONFIG": str(shared.kubeconfigs[who])}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True) for who in ("alice", "bob")}
        for who, proc in procs.items():
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{who}:\n{out}"
        for namespace in (alice_ns, bob_ns):
            assert name in deployments(testenv, namespace)
            assert admin.read_namespaced_secret(PULL_SECRET, namespace) is not None

        # Alice's credentials reach nothing in Bob's namespace (the RBAC of testenv).
        listed = subprocess.run(["kubectl", "--kubeconfig", str(shared.kubeconfigs["alice"]),
                                 "get", "pods", "-n", bob_ns], capture_output=True,
                                text=True, timeout=60, check=False)
        assert listed.returncode != 0 and "forbidden" in listed.stderr.lower()

        bob_before = deployments(testenv, bob_ns)[name]
        down = run(["down"], dirs["alice"], shared.kubeconfigs["alice"])
        assert down.returncode == 0, output(down)
        assert name not in deployments(testenv, alice_ns)
        assert read_or_none(admin.read_namespaced_secret, PULL_SECRET, alice_ns) is None
        bob_after = deployments(testenv, bob_ns).get(name)
        assert bob_after is not None, "alice's down deleted bob's Deployment"
        assert bob_after.metadata.uid == bob_before.metadata.uid
        assert bob_after.metadata.deletion_timestamp is None
        assert admin.read_namespaced_secret(PULL_SECRET, bob_ns) is not None
    finally:
        for who in ("alice", "bob"):
            run(["down"], dirs[who], shared.kubeconfigs[who])
    assert name not in deployments(testenv, bob_ns)


def test_second_session_in_the_same_namespace_is_refused_naming_the_first(
        testenv: K8sTestEnv, shared: Shared, docker_login: Path, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    namespace, kubeconfig = shared.namespaces["bob"], shared.kubeconfigs["bob"]
    first_dir = project(tmp_path / "first", name=f"first-{uid}", image=f"first-app-{uid}",
                        allow=allow(shared))
    second_dir = project(tmp_path / "second", name=f"second-{uid}",
                         image=f"second-app-{uid}", allow=allow(shared))
    log_path = tmp_path / "up.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log_file:
        up = subprocess.Popen([sys.executable, "-m", "devloop", "up", "--stream", "--port",
                               "0"], cwd=first_dir, env=env, stdout=log_file,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "holds the devloop session lock" in log_path.read_text(), 120,
                 "the first session to take the namespace")
        held = lease(testenv, namespace)
        assert held is not None and f"pid {up.pid} " in held.spec.holder_identity

        second = run(["ci", "--timeout", "60s"], second_dir, kubeconfig, timeout=120)
        text = output(second)
        assert second.returncode != 0, text
        assert f"namespace '{namespace}' is in use by another devloop session" in text, text
        assert f"(pid {up.pid}, Tiltfile {first_dir / 'Tiltfile'}" in text
        assert f"second-{uid}" not in deployments(testenv, namespace)
    finally:
        interrupt_and_wait(up)
    # The first session released the namespace on exit: the next one gets it.
    assert lease(testenv, namespace) is None, log_path.read_text()
    try:
        again = run(["ci", "--timeout", "180s"], second_dir, kubeconfig)
        assert again.returncode == 0, output(again)
    finally:
        for directory in (first_dir, second_dir):
            run(["down"], directory, kubeconfig)


class Gate:
    """A TCP port on the registry's address that refuses connections until `open()`, then
    passes them through to the registry (TLS end to end): a registry that is down when a
    push starts and comes back."""

    def __init__(self, address: str, port: int, target: tuple[str, int]) -> None:
        self.address, self.port, self.target = address, port, target
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def open(self) -> None:
        server = socket.create_server((self.address, self.port))
        self._server = server
        thread = threading.Thread(target=self._accept, args=(server,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client_sock, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client_sock, upstream), (upstream, client_sock)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def test_push_rides_out_a_registry_that_is_down_and_gives_up_with_advice(
        shared: Shared, testenv: K8sTestEnv, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    address = socket.gethostbyname(shared.registry)
    port = 8443
    host = f"{shared.registry}:{port}"
    certs = Path("/etc/docker/certs.d") / host
    certs.mkdir(parents=True, exist_ok=True)
    shutil.copy(testenv.env["DEVLOOP_TLS_REGISTRY_CA"], certs / "ca.crt")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {host: {"auth": base64.b64encode(
        f"{shared.user}:{shared.password}".encode()).decode()}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY stamp /stamp\n")
    (context / "stamp").write_text(uuid.uuid4().hex)
    repo = f"{host}/flaky-{uuid.uuid4().hex[:8]}"
    api = docker.APIClient(version="auto")
    for item in api.build(path=str(context), tag=f"{repo}:1", decode=True, rm=True):
        assert "error" not in item, item
    image = BuiltImage(ref=f"{repo}:1", image_id=str(api.inspect_image(f"{repo}:1")["Id"]),
                       repo=repo, tag="1")
    gate = Gate(address, port, (address, 443))
    lines: list[str] = []
    try:
        # Down for the whole push: four attempts, then an error naming the registry.
        with pytest.raises(PushError) as caught:
            Pusher().push_blocking(image, reg.Registry(host=host), lines.append)
        assert "connection refused" in str(caught.value)
        assert f"Gave up after 4 attempts. Is the registry {host} up" in str(caught.value)
        assert caught.value.temporary

        # Down when the push starts, back 2.5 s later: the retries carry it through.
        lines.clear()
        opener = threading.Timer(2.5, gate.open)
        opener.start()
        result = Pusher().push_blocking(image, reg.Registry(host=host), lines.append)
        opener.join()
        assert result.attempts >= 2, lines
        assert result.ref == f"{repo}:1"
        assert any("retrying in 1s (attempt 2 of 4)" in line for line in lines), lines
        assert shared.password not in "\n".join(lines)
    finally:
        gate.close()
        shutil.rmtree(certs, ignore_errors=True)
        api.remove_image(f"{repo}:1", force=True)


def admin_lease(namespace: str, *, holder: str, host: str, renewed_seconds_ago: float
                ) -> dict[str, Any]:
    when = (datetime.now(UTC) - timedelta(seconds=renewed_seconds_ago)).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": namespace, "annotations": {
                "devloop.dev/user": holder, "devloop.dev/host": host,
                "devloop.dev/pid": "4242", "devloop.dev/session": "elsewhere",
                "devloop.dev/tiltfile": "/home/carol/app/Tiltfile"}},
            "spec": {"holderIdentity": f"{holder}@{host} pid 4242 session elsewhere",
                     "leaseDurationSeconds": 30, "acquireTime": when, "renewTime": when}}


def test_another_machines_session_blocks_up_and_down_until_its_lease_expires(
        testenv: K8sTestEnv, shared: Shared, docker_login: Path, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    namespace, kubeconfig = shared.namespaces["alice"], shared.kubeconfigs["alice"]
    directory = project(tmp_path / "app", name=f"blocked-{uid}", image=f"blocked-{uid}",
                        allow=allow(shared))
    with testenv.api_client() as api:
        leases = client.CoordinationV1Api(api)
        leases.create_namespaced_lease(namespace, admin_lease(
            namespace, holder="carol", host="carols-laptop", renewed_seconds_ago=2))
        try:
            for command in (["ci", "--timeout", "60s"], ["down"]):
                done = run(command, directory, kubeconfig, timeout=120)
                text = output(done)
                assert done.returncode != 0, text
                assert (f"namespace '{namespace}' is in use by another devloop session: "
                        "carol@carols-laptop (pid 4242, Tiltfile /home/carol/app/Tiltfile"
                        in text), text
            assert f"blocked-{uid}" not in deployments(testenv, namespace)

            # Carol's laptop died a while ago: her lease has expired, the next session
            # takes the namespace over and says from whom.
            expired = admin_lease(namespace, holder="carol", host="carols-laptop",
                                  renewed_seconds_ago=300)
            expired["metadata"]["resourceVersion"] = leases.read_namespaced_lease(
                LEASE, namespace).metadata.resource_version
            leases.replace_namespaced_lease(LEASE, namespace, expired)
            done = run(["ci", "--timeout", "180s"], directory, kubeconfig)
            text = output(done)
            assert done.returncode == 0, text
            assert "Taking over the devloop session lock of namespace " \
                   f"{namespace} from carol@carols-laptop" in text
            assert re.search(r"it was last renewed 3\d\ds ago", text), text
            assert lease(testenv, namespace) is None
        finally:
            with contextlib.suppress(ApiException):
                leases.delete_namespaced_lease(LEASE, namespace)
            run(["down"], directory, kubeconfig)


def test_namespace_flag_deploys_and_deletes_in_that_namespace(
        testenv: K8sTestEnv, k8s_namespace: str, tmp_path: Path) -> None:
    name = f"flagged-{uuid.uuid4().hex[:8]}"
    directory = write_project(tmp_path / "app", "k8s_yaml('k8s.yaml')\n"
                              "print('namespace: ' + k8s_namespace())\n",
                              [deployment(name, "echo up; exec sleep 3600")])
    # The admin context's own namespace is `default`; --namespace overrides it.
    done = run(["ci", "--timeout", "120s", "--namespace", k8s_namespace], directory,
               testenv.kubeconfig)
    assert done.returncode == 0, output(done)
    assert f"namespace: {k8s_namespace}" in output(done)
    assert name in deployments(testenv, k8s_namespace)
    assert name not in deployments(testenv, "default")
    down = run(["down", "--namespace", k8s_namespace], directory, testenv.kubeconfig)
    assert down.returncode == 0, output(down)
    assert f"Deleted Deployment/{name}" in down.stdout
    assert name not in deployments(testenv, k8s_namespace)
