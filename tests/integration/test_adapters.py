"""The Docker, registry and Kubernetes adapters against the real test environment."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from devloop.build import registry as reg
from devloop.build.custom_builder import CustomBuilder
from devloop.build.docker_builder import BuildError, DockerBuilder, content_tag
from devloop.k8s.client import KubeClient, KubeError, ObjectRef, PortForwarder
from devloop.k8s.inject import OWNER_SELECTOR, inject
from devloop.k8s.portforward import PortForwardError
from devloop.k8s.sync import tar_archive
from devloop.model import plan

pytestmark = pytest.mark.integration

WEB_REF = "example.com/devloop-adapters-web"
BIG = bytes(range(256)) * 4096  # 1 MiB: many frames, beyond any window of 64 KiB
SERVER = (
    "echo started; (while true; do echo tick; sleep 1; done) & "
    "exec httpd -f -p 8080 -h /www"
)


def _context(root: Path) -> plan.DockerBuild:
    (root / "www").mkdir()
    (root / "www" / "hello.txt").write_text("hello\n")
    (root / "www" / "index.html").write_text("<h1>devloop</h1>\n")
    (root / "www" / "big.bin").write_bytes(BIG)
    (root / "www" / "secret.txt").write_text("must not be in the image\n")
    (root / ".dockerignore").write_text("www/secret.txt\n")
    (root / "Dockerfile").write_text(
        "FROM busybox\nCOPY www /www\n"
        f'CMD ["sh", "-c", "{SERVER}"]\n')
    return plan.DockerBuild(ref=WEB_REF, context=str(root), dockerfile=str(root / "Dockerfile"))


def _deployment(namespace: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "web", "image": WEB_REF,
                                    "ports": [{"containerPort": 8080}]}],
                },
            },
        },
    }


def _running(pod: dict) -> bool:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return bool(statuses) and all("running" in (s.get("state") or {}) for s in statuses)


async def test_build_push_deploy_observe_and_delete(testenv, k8s_namespace, tmp_path):
    kube = await KubeClient.create(str(testenv.kubeconfig))
    registry, _note = await reg.discover_registry(kube, plan.Settings())
    assert registry is not None and registry.host == testenv.registry

    build_log: list[str] = []
    target = _context(tmp_path)
    builder = DockerBuilder()
    image = await builder.build(target, log=build_log.append, registry=registry)
    assert image.tag == content_tag(image.image_id)
    assert image.repo == f"{registry.host}/example.com_devloop-adapters-web"
    # BuildKit's progress, one line per step as it runs (`#5 [2/2] COPY ...`).
    assert any(re.match(r"#\d+ \[", line) for line in build_log), build_log

    push_log: list[str] = []
    pushed = await builder.push(image, registry, log=push_log.append)
    assert pushed == image.ref
    assert push_log

    # An identical rebuild gives the same content tag.
    again = await builder.build(target, log=lambda _line: None, registry=registry)
    assert again.ref == image.ref

    cluster_ref = reg.cluster_ref_for_local(pushed, registry)
    manifest = _deployment(k8s_namespace)
    key = f"web:deployment.apps:{k8s_namespace}"
    injections = [plan.ImageInjection(key, "{.spec.template.spec.containers[0].image}", WEB_REF)]
    applied = await kube.server_side_apply(
        inject(manifest, injections, {WEB_REF: cluster_ref}, resource="web"))
    container = applied["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == cluster_ref
    assert container["imagePullPolicy"] == "IfNotPresent"
    await kube.server_side_apply({"apiVersion": "v1", "kind": "ConfigMap",
                                  "metadata": {"name": "extra", "namespace": k8s_namespace,
                                               "labels": {"app.kubernetes.io/managed-by":
                                                          "devloop"}},
                                  "data": {"a": "1"}})

    pod_name = ""
    async with asyncio.timeout(120):
        async for event in kube.watch_pods(k8s_namespace, OWNER_SELECTOR):
            if event.type != "DELETED" and _running(event.pod):
                pod_name = event.name
                break
    assert pod_name

    async with asyncio.timeout(60):
        seen = []
        async for line in kube.stream_logs(k8s_namespace, pod_name, "web"):
            seen.append(line)
            if "tick" in line:
                break
    assert seen[0] == "started"

    errors: list[PortForwardError] = []
    forwarder = PortForwarder(kube, on_error=errors.append)
    await forwarder.start(k8s_namespace, pod_name, 0, 8080)
    refused = PortForwarder(kube, on_error=errors.append)
    await refused.start(k8s_namespace, pod_name, 0, 9999)
    try:
        base = f"http://127.0.0.1:{forwarder.local_port}"
        timeout = aiohttp.ClientTimeout(total=20)
        async with aiohttp.ClientSession() as http:

            async def fetch(path: str) -> bytes:
                async with http.get(base + path, timeout=timeout) as resp:
                    assert resp.status == 200
                    return await resp.read()

            # Connections one after another and at once, small and large answers: all
            # streams on the one SPDY session to the pod.
            assert await fetch("/hello.txt") == b"hello\n"
            answers = await asyncio.gather(*(fetch(p) for p in ["/hello.txt", "/big.bin"] * 3))
            assert answers == [b"hello\n", BIG] * 3
            assert list(forwarder._sessions) == [(k8s_namespace, pod_name)]
            assert errors == []
            # Nothing listens on 9999: the connection ends, and the kubelet's reason is said.
            reader, writer = await asyncio.open_connection("127.0.0.1", refused.local_port)
            async with asyncio.timeout(20):
                assert await reader.read() == b""
            writer.close()
    finally:
        await forwarder.stop()
        await refused.stop()
    assert [e.message for e in errors] == [
        "connection refused: nothing listens on port 9999 in the pod"]

    # A forward used before anything listens on the pod's port works once something does
    # (a first request during the app's start must not break the forward).
    early = PortForwarder(kube, on_error=errors.append)
    await early.start(k8s_namespace, pod_name, 0, 9998)
    try:
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", early.local_port)
            writer.write(b"GET /hello.txt HTTP/1.0\r\n\r\n")  # as a client would
            async with asyncio.timeout(20):
                assert await reader.read() == b""  # refused in the pod
            writer.close()
        started = await kube.exec(k8s_namespace, pod_name, "web",
                                  ["httpd", "-p", "9998", "-h", "/www"])  # it daemonizes
        assert started.exit_code == 0, started
        async with aiohttp.ClientSession() as http, asyncio.timeout(20):
            url = f"http://127.0.0.1:{early.local_port}/hello.txt"
            async with http.get(url) as resp:
                assert await resp.read() == b"hello\n"
    finally:
        await early.stop()

    result = await kube.exec(k8s_namespace, pod_name, "web", ["cat", "/www/hello.txt"])
    assert (result.exit_code, result.stdout) == (0, b"hello\n")
    result = await kube.exec(k8s_namespace, pod_name, "web", ["cat"], stdin=b"x" * 200_000)
    assert (result.exit_code, len(result.stdout)) == (0, 200_000)
    result = await kube.exec(k8s_namespace, pod_name, "web", ["cat", "/www/secret.txt"])
    assert result.exit_code != 0  # .dockerignore kept it out of the image
    assert b"secret.txt" in result.stderr
    syncing = await KubeClient.create(str(testenv.kubeconfig))
    await _extract_on_a_command_started_ahead(syncing, kube, k8s_namespace, pod_name, tmp_path)

    events = await kube.events_for(k8s_namespace, pod_name)
    assert any(e.get("reason") == "Scheduled" for e in events)

    owned = await kube.list_by_label(OWNER_SELECTOR, namespace=k8s_namespace)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in owned}
    assert {("Deployment", "web"), ("ConfigMap", "extra")} <= kinds
    for obj in owned:
        if obj["kind"] in ("Deployment", "ConfigMap"):
            assert await kube.delete(obj)
    assert not await kube.delete(ObjectRef("v1", "ConfigMap", "extra", k8s_namespace))
    remaining = await kube.list_by_label(OWNER_SELECTOR, kinds=[("apps/v1", "Deployment"),
                                                                ("v1", "ConfigMap")],
                                         namespace=k8s_namespace)
    assert remaining == []
    kube.close()


async def _waiting_extractors(kube: KubeClient, namespace: str, pod: str) -> list[str]:
    """PIDs of the `tar -x` processes in the container (busybox `ps`)."""
    listing = await kube.exec(namespace, pod, "web", ["ps", "-o", "pid,args"])
    return [line.split()[0] for line in listing.stdout.decode().splitlines()
            if "tar -x -C / -f -" in line]


async def _read(kube: KubeClient, namespace: str, pod: str, path: str) -> bytes:
    return (await kube.exec(namespace, pod, "web", ["cat", path])).stdout


async def _extract_on_a_command_started_ahead(syncing: KubeClient, kube: KubeClient,
                                              namespace: str, pod: str, tmp_path: Path
                                              ) -> None:
    """Live update's extraction (by `syncing`): after each, a `tar -x` waits in the
    container for the next; one that was killed meanwhile is replaced; closing `syncing`
    ends it."""
    source = tmp_path / "synced.txt"

    async def sync(text: str) -> None:
        source.write_text(text)
        archive = tar_archive([(str(source), "/tmp/synced.txt")])
        result = await syncing.extract(namespace, pod, "web", archive.data)
        assert result.exit_code == 0, result
        assert await _read(kube, namespace, pod, "/tmp/synced.txt") == text.encode()

    await sync("one\n")
    async with asyncio.timeout(20):
        while not (first := await _waiting_extractors(kube, namespace, pod)):
            await asyncio.sleep(0.05)
    await sync("two\n")  # handed to the waiting one, which then exits
    async with asyncio.timeout(20):
        while (after := await _waiting_extractors(kube, namespace, pod)) in ([], first):
            await asyncio.sleep(0.05)
    assert len(after) == 1 and after != first
    await kube.exec(namespace, pod, "web", ["kill", after[0]])  # as a container restart
    await sync("three\n")
    async with asyncio.timeout(20):
        while (left := await _waiting_extractors(kube, namespace, pod)) in ([], after):
            await asyncio.sleep(0.05)
    syncing.close()
    async with asyncio.timeout(20):
        while set(left) & set(await _waiting_extractors(kube, namespace, pod)):
            await asyncio.sleep(0.05)


async def test_failed_build_reports_the_failing_step(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox\nRUN echo fine\nRUN echo failing-step-output && exit 3\n")
    target = plan.DockerBuild(ref="devloop-adapters-broken", context=str(tmp_path),
                              dockerfile=str(tmp_path / "Dockerfile"))
    lines: list[str] = []
    with pytest.raises(BuildError) as info:
        await DockerBuilder().build(target, log=lines.append)
    assert "failing-step-output" in info.value.log_tail
    assert "echo fine" not in info.value.log_tail
    assert "3" in info.value.message


async def test_custom_build_uses_expected_ref(testenv, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN echo custom > /custom.txt\n")
    target = plan.CustomBuild(ref="devloop-adapters-custom", command=(
        "docker build -q -t $EXPECTED_REF .",), shell=True, deps=(str(tmp_path),),
        dir=str(tmp_path))
    builder = DockerBuilder()
    lines: list[str] = []
    registry = reg.Registry(host=testenv.registry)
    image = await CustomBuilder(builder).build(target, log=lines.append, registry=registry)
    assert any(line.startswith("  EXPECTED_REF=localhost:5000/devloop-adapters-custom:devloop-"
                               "build-") for line in lines)
    assert image.ref == f"{registry.host}/devloop-adapters-custom:{content_tag(image.image_id)}"
    assert await builder.image_id(image.ref) == image.image_id


async def test_invalid_object_is_a_permanent_error_naming_it(testenv, k8s_namespace):
    kube = await KubeClient.create(str(testenv.kubeconfig))
    bad = _deployment(k8s_namespace)
    del bad["spec"]["selector"]
    with pytest.raises(KubeError) as info:
        await kube.server_side_apply(bad)
    assert not info.value.temporary
    assert f"Deployment {k8s_namespace}/web" in info.value.message
    assert info.value.reason == "Invalid"
    kube.close()


async def test_port_forward_to_missing_pod_reports_pod_gone(testenv, k8s_namespace):
    kube = await KubeClient.create(str(testenv.kubeconfig))
    errors: list[PortForwardError] = []
    forwarder = PortForwarder(kube, on_error=errors.append)
    await forwarder.start(k8s_namespace, "no-such-pod", 0, 80)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.local_port)
        async with asyncio.timeout(30):
            assert await reader.read() == b""  # closed by the forwarder
        writer.close()
    finally:
        await forwarder.stop()
    assert len(errors) == 1 and errors[0].pod_gone
    kube.close()
