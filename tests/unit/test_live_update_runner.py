"""K8sRunner's live update branch against a fake cluster that implements the cluster seam."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devloop.engine import k8s_live, k8s_monitor
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.runner import UpdateError
from devloop.engine.scheduler import RuntimeState
from devloop.k8s.errors import KubeError
from devloop.k8s.streams import ExecResult
from devloop.model import plan as p
from tests.unit.fake_cluster import FakeCluster, Recorder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("v1\n")
    return tmp_path


def make_runner(project: Path, *steps: p.LiveUpdateStep
                ) -> tuple[K8sRunner, FakeCluster, Recorder]:
    image = p.DockerBuild("app", str(project), str(project / "Dockerfile"), live_update=steps)
    resource = p.Resource("app", p.ResourceType.K8S, image_refs=("app",))
    plan = p.Plan(str(project / "Tiltfile"), (resource,), (image,))
    cluster, recorder = FakeCluster(), Recorder()
    return K8sRunner(resource, plan=plan, cluster=cluster, hooks=recorder.hooks()), \
        cluster, recorder


async def test_first_deploy_builds_then_synced_changes_go_into_the_running_container(
        project: Path) -> None:
    runner, cluster, recorder = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    main = str(project / "src" / "main.py")
    try:
        await runner.update((main,))
        assert cluster.builds == 1 and cluster.execs == []
        await runner.update((main,))
        assert cluster.builds == 1
        assert cluster.archives() == [["app/main.py"]]
        assert cluster.execs[0][0] == "app-1"
        (status,) = recorder.live_updates()
        assert status["result"] == "ok" and status["steps"][0]["files"] == 1
        assert any("Live update: synced 1 file to app-1/main in" in line
                   for line in recorder.lines)
    finally:
        await runner.stop()


async def test_a_deleted_file_is_removed_in_the_container(project: Path) -> None:
    runner, cluster, _ = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    try:
        await runner.update(())
        (project / "src" / "main.py").unlink()
        await runner.update((str(project / "src" / "main.py"),))
        assert [argv for _, argv, _ in cluster.execs] == [["rm", "-rf", "--", "/app/main.py"]]
        assert cluster.builds == 1
    finally:
        await runner.stop()


async def test_fall_back_on_rebuilds_and_says_why(project: Path) -> None:
    runner, cluster, recorder = make_runner(
        project, p.FallBackOnStep((str(project / "Dockerfile"),)),
        p.SyncStep(str(project), "/app"))
    try:
        await runner.update(())
        await runner.update((str(project / "Dockerfile"),))
        assert cluster.builds == 2 and cluster.execs == []
        (status,) = recorder.live_updates()
        assert status["result"] == "fallback" and "fall_back_on" in status["error"]
    finally:
        await runner.stop()


async def test_a_failing_run_step_fails_the_update_and_the_next_change_retries_its_files(
        project: Path) -> None:
    runner, cluster, recorder = make_runner(
        project, p.SyncStep(str(project / "src"), "/app"),
        p.RunStep(("sh", "-c", "make check"), True))
    (project / "src" / "other.py").write_text("x\n")
    cluster.answer = lambda argv: ExecResult(2, b"", b"check: syntax error") \
        if argv[0] == "sh" else ExecResult(0, b"", b"")
    try:
        await runner.update(())
        with pytest.raises(UpdateError, match="make check.*exit code 2:\ncheck: syntax error"):
            await runner.update((str(project / "src" / "main.py"),))
        assert recorder.live_updates()[0]["result"] == "failed"
        cluster.answer = lambda argv: ExecResult(0, b"ok", b"")
        await runner.update((str(project / "src" / "other.py"),))
        assert cluster.builds == 1
        assert cluster.archives()[-1] == ["app/main.py", "app/other.py"]
        assert [s["result"] for s in recorder.live_updates()] == ["failed", "ok"]
    finally:
        await runner.stop()


async def test_run_steps_run_only_for_their_triggers(project: Path) -> None:
    deps = str(project / "src" / "deps.txt")
    runner, cluster, _ = make_runner(
        project, p.SyncStep(str(project / "src"), "/app"),
        p.RunStep(("pip", "install"), False, triggers=(deps,)))
    (project / "src" / "deps.txt").write_text("x\n")
    try:
        await runner.update(())
        await runner.update((str(project / "src" / "main.py"),))
        assert [argv[0] for _, argv, _ in cluster.execs] == ["tar"]
        await runner.update((deps,))
        assert [argv[0] for _, argv, _ in cluster.execs] == ["tar", "tar", "pip"]
    finally:
        await runner.stop()


def starting(pod: dict[str, Any]) -> dict[str, Any]:
    """`pod` as its status says while its container is being created."""
    status = pod["status"]
    status["phase"] = "Pending"
    status["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return pod


async def test_a_change_saved_while_the_container_starts_waits_for_it(project: Path) -> None:
    runner, cluster, recorder = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    main = str(project / "src" / "main.py")
    try:
        await runner.update(())
        cluster.pods = [starting(cluster.pod("app-1"))]

        async def runs_later() -> None:
            await asyncio.sleep(0.5)
            cluster.pods = [cluster.pod("app-1")]

        later = asyncio.create_task(runs_later())
        await runner.update((main,))
        await later
        assert cluster.builds == 1 and cluster.archives() == [["app/main.py"]]
        assert "Live update: waiting for container app-1/main to start" in recorder.lines
        assert [s["result"] for s in recorder.live_updates()] == ["ok"]
    finally:
        await runner.stop()


async def test_a_container_that_does_not_start_in_time_gets_a_rebuild(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(k8s_live, "START_WAIT_SECS", 0.3)
    runner, cluster, recorder = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    try:
        await runner.update(())
        cluster.pods = [starting(cluster.pod("app-1"))]
        await runner.update((str(project / "src" / "main.py"),))
        assert cluster.builds == 2 and cluster.execs == []
        assert "did not start within 0.3 s" in recorder.live_updates()[-1]["error"]
    finally:
        await runner.stop()


async def test_a_restarted_container_after_a_live_update_gets_a_rebuild(project: Path) -> None:
    runner, cluster, recorder = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    main = str(project / "src" / "main.py")
    try:
        await runner.update(())
        await runner.update((main,))
        cluster.pods = [cluster.pod("app-1", restarts=1)]
        await runner.update((main,))
        assert cluster.builds == 2
        assert "restarted since the last live update" in recorder.live_updates()[-1]["error"]
        # After the rebuild the new pod is current again: live updates resume.
        await runner.update((main,))
        assert cluster.builds == 2 and cluster.execs[-1][0] == "app-2"
    finally:
        await runner.stop()


async def test_a_new_pod_after_a_live_update_gets_a_rebuild(project: Path) -> None:
    runner, cluster, _ = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    main = str(project / "src" / "main.py")
    try:
        await runner.update(())
        await runner.update((main,))
        cluster.pods.append(cluster.pod("app-1-extra"))
        await runner.update((main,))
        assert cluster.builds == 2
    finally:
        await runner.stop()


async def test_a_container_without_tar_falls_back_to_a_rebuild_and_says_so(
        project: Path) -> None:
    runner, cluster, recorder = make_runner(project, p.SyncStep(str(project / "src"), "/app"))

    def no_tar(argv: list[str]) -> ExecResult:
        raise KubeError('exec: "tar": executable file not found in $PATH')

    try:
        await runner.update(())
        cluster.answer = no_tar
        await runner.update((str(project / "src" / "main.py"),))
        assert cluster.builds == 2
        assert any("has no `tar`" in line and "Falling back to a full rebuild" in line
                   for line in recorder.lines)
        assert recorder.live_updates()[-1]["result"] == "fallback"
    finally:
        await runner.stop()


async def test_a_failed_full_build_makes_the_next_update_a_full_build_too(
        project: Path) -> None:
    runner, cluster, _ = make_runner(project, p.SyncStep(str(project / "src"), "/app"))
    main = str(project / "src" / "main.py")
    builds = cluster.build_images

    async def broken(*args: Any, **kwargs: Any) -> dict[str, str]:
        raise UpdateError("image app: build failed")

    try:
        await runner.update(())
        cluster.build_images = broken  # type: ignore[method-assign]
        with pytest.raises(UpdateError):
            await runner.update((str(project / "Dockerfile"),))
        cluster.build_images = builds  # type: ignore[method-assign]
        await runner.update((main,))
        assert cluster.builds == 2 and cluster.execs == []
    finally:
        await runner.stop()


@pytest.mark.parametrize("stuck_seconds, state", [(3600.0, RuntimeState.PENDING),
                                                  (0.0, RuntimeState.ERROR)])
async def test_a_retried_container_error_fails_only_once_it_lasts(
        project: Path, monkeypatch: pytest.MonkeyPatch, stuck_seconds: float,
        state: RuntimeState) -> None:
    monkeypatch.setattr(k8s_monitor, "STUCK_SECONDS", stuck_seconds)
    runner, cluster, _ = make_runner(project)
    try:
        await runner.update(())
        pod = cluster.pod("app-1")
        pod["status"]["containerStatuses"][0]["state"] = {"waiting": {
            "reason": "CreateContainerConfigError",
            "message": "failed to sync configmap cache"}}
        cluster.pods = [pod]
        await runner.monitor.observe()
        report = runner.runtime()
        assert report.state == state
        assert "CreateContainerConfigError" in report.reason
    finally:
        await runner.stop()
