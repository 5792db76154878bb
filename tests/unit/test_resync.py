"""A container that restarted, or a pod that replaced one, after a live update gets the
live-updated files again at once, with a log line and an alert until it has them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devloop.engine import live_update as lu
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.resync import stale_containers
from devloop.model import plan as p
from tests.unit.fake_cluster import FakeCluster, Recorder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("v1\n")
    return tmp_path


def runner_for(project: Path) -> tuple[K8sRunner, FakeCluster, Recorder]:
    image = p.DockerBuild("app", str(project), str(project / "Dockerfile"),
                          live_update=(p.SyncStep(str(project / "src"), "/app"),))
    resource = p.Resource("app", p.ResourceType.K8S, image_refs=("app",))
    plan = p.Plan(str(project / "Tiltfile"), (resource,), (image,))
    cluster, recorder = FakeCluster(), Recorder()
    return K8sRunner(resource, plan=plan, cluster=cluster, hooks=recorder.hooks()), \
        cluster, recorder


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("replaced", [False, True], ids=["restarted", "pod-replaced"])
async def test_a_container_without_the_live_updated_files_gets_them_again(
        project: Path, replaced: bool) -> None:
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


async def test_nothing_is_re_synced_before_a_live_update_or_after_a_rebuild(
        project: Path) -> None:
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


def test_stale_containers_are_new_pods_and_restarted_ones_of_the_deployed_image() -> None:
    synced = lu.Synced(frozenset({("ns", "a"), ("ns", "b")}),
                       {("ns", "a", "main"): 0, ("ns", "b", "main"): 2})
    containers = [container("a", 1), container("b", 2), container("c", 0),
                  container("d", 0, image="other"), container("e", 0, running=False)]
    assert [c.pod for c in stale_containers(containers, {"img"}, synced)] == ["a", "c"]
    assert stale_containers(containers, {"img"}, None) == []
