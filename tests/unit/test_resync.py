"""A container that restarted, or a pod that replaced one, after a live update gets the
live-updated files again at once, with a log line and an alert until it has them."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from devloop.engine import live_update as lu
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.resync import stale_containers
from devloop.engine.runner import RunnerHooks
from devloop.k8s.streams import ExecResult
from devloop.model import plan as p


class NoEvents:
    def subscribe(self, namespace: str, pod: str, callback: Any) -> None:
        return None

    def unsubscribe(self, namespace: str, pod: str, callback: Any) -> None:
        return None

    def forget(self, namespace: str, pod: str) -> None:
        return None


class Pods:
    """The shared pod watch of the fake cluster: its pods, and listeners told of changes."""

    synced, error, what = True, "", "pods in ns"

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.listeners: list[Any] = []

    def listen(self, callback: Any) -> None:
        self.listeners.append(callback)

    def unlisten(self, callback: Any) -> None:
        if callback in self.listeners:
            self.listeners.remove(callback)

    def get(self, name: str) -> dict[str, Any] | None:
        return next((pod for pod in self.cluster.pods if pod["metadata"]["name"] == name),
                    None)

    def select(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.cluster.pods)


class Cluster:
    namespace = "ns"
    events = NoEvents()

    def __init__(self) -> None:
        self.builds = 0
        self.image = ""
        self.pods: list[dict[str, Any]] = []
        self.execs: list[tuple[str, list[str], bytes | None]] = []
        self.watched = Pods(self)

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]:
        return {}

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any,
                           inputs: Any = None) -> dict[str, str]:
        self.builds += 1
        self.image = f"reg/app:{self.builds}"
        self.pods = [self.pod(f"app-{self.builds}")]
        return {ref: self.image for ref in refs}

    def pod(self, name: str, restarts: int = 0) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "labels": {"app": "app"}},
                "spec": {"containers": [{"name": "main", "image": self.image}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "main", "restartCount": restarts, "state": {"running": {}},
                     "ready": True}]}}

    def change(self, *pods: dict[str, Any]) -> None:
        self.pods = list(pods)
        for callback in list(self.watched.listeners):
            callback()

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]:
        return [{"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "app", "namespace": "ns"},
                 "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": {
                     "spec": {"containers": [{"name": "main", "image": images["app"]}]}}}}]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return manifest

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        return manifest

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.pods

    def watch(self, kind: str, namespace: str) -> Any:
        return self.watched

    async def follow_logs(self, namespace: str, pod: str, container: str, log: Any) -> None:
        return None

    async def forward(self, *args: Any) -> Any:
        raise AssertionError("no port-forwards here")

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult:
        self.execs.append((pod, argv, stdin))
        return ExecResult(0, b"", b"")

    def extracted(self) -> list[tuple[str, list[str]]]:
        found = []
        for pod, argv, stdin in self.execs:
            if argv[0] == "tar" and stdin is not None:
                with tarfile.open(fileobj=io.BytesIO(stdin)) as tar:
                    found.append((pod, [m.name for m in tar.getmembers() if m.isfile()]))
        return found


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.alerts: dict[str, str] = {}
        self.alerted: list[str] = []

    def hooks(self) -> RunnerHooks:
        def publish(kind: str, name: str, spec: Any, status: Any) -> None:
            if kind == "alert":
                self.alerts[name] = status["message"]
                self.alerted.append(status["message"])

        return RunnerHooks(log=lambda resource, text, source, prefix: self.lines.append(text),
                           changed=lambda: None, publish=publish,
                           delete=lambda kind, name: self.alerts.pop(name, None))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("v1\n")
    return tmp_path


def runner_for(project: Path) -> tuple[K8sRunner, Cluster, Recorder]:
    image = p.DockerBuild("app", str(project), str(project / "Dockerfile"),
                          live_update=(p.SyncStep(str(project / "src"), "/app"),))
    resource = p.Resource("app", p.ResourceType.K8S, image_refs=("app",))
    plan = p.Plan(str(project / "Tiltfile"), (resource,), (image,))
    cluster, recorder = Cluster(), Recorder()
    return K8sRunner(resource, plan=plan, cluster=cluster, hooks=recorder.hooks()), \
        cluster, recorder


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("replaced", [False, True], ids=["restarted", "pod-replaced"])
async def test_a_container_without_the_live_updated_files_gets_them_again(project, replaced):
    runner, cluster, recorder = runner_for(project)
    main = str(project / "src" / "main.py")
    try:
        await runner.update(())
        (project / "src" / "main.py").write_text("v2\n")
        await runner.update((main,))
        assert cluster.extracted() == [("app-1", ["app/main.py"])]
        cluster.change(cluster.pod("app-9") if replaced else cluster.pod("app-1", restarts=1))
        await settle()
        target = "app-9" if replaced else "app-1"
        assert cluster.extracted()[-1] == (target, ["app/main.py"])
        assert any(f"Container {target}/main restarted after a live update" in line
                   for line in recorder.lines)
        assert any(f"Re-synced 1 file into {target}/main" in line for line in recorder.lines)
        assert recorder.alerted and "re-syncing 1 file" in recorder.alerted[0]
        assert recorder.alerts == {}
        assert cluster.builds == 1
        # The next change live updates the re-synced container, no rebuild.
        (project / "src" / "main.py").write_text("v3\n")
        await runner.update((main,))
        assert cluster.builds == 1 and cluster.extracted()[-1][0] == target
    finally:
        await runner.stop()


async def test_nothing_is_re_synced_before_a_live_update_or_after_a_rebuild(project):
    runner, cluster, recorder = runner_for(project)
    try:
        await runner.update(())
        cluster.change(cluster.pod("app-1", restarts=1))
        await settle()
        assert cluster.execs == []
        await runner.update((str(project / "src" / "main.py"),))
        await runner.update((str(project / "Dockerfile"),))  # rebuilds: app-2
        cluster.change(cluster.pod("app-2", restarts=1))
        await settle()
        assert [pod for pod, _ in cluster.extracted()] == ["app-1"]
    finally:
        await runner.stop()


def container(pod: str, restarts: int, *, image: str = "img", running: bool = True,
              ) -> lu.Container:
    return lu.Container("ns", pod, "main", image, running, restarts)


def test_stale_containers_are_new_pods_and_restarted_ones_of_the_deployed_image():
    synced = lu.Synced(frozenset({("ns", "a"), ("ns", "b")}),
                       {("ns", "a", "main"): 0, ("ns", "b", "main"): 2})
    containers = [container("a", 1), container("b", 2), container("c", 0),
                  container("d", 0, image="other"), container("e", 0, running=False)]
    assert [c.pod for c in stale_containers(containers, {"img"}, synced)] == ["a", "c"]
    assert stale_containers(containers, {"img"}, None) == []
