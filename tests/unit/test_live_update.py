"""Live update decisions (pure) and the tar archive of a change set."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from devloop.build.restart_wrapper import touch_command
from devloop.engine import live_update as lu
from devloop.k8s.sync import tar_archive
from devloop.model import plan as p


def image(tmp_path: Path, *steps: p.LiveUpdateStep, ref: str = "app",
          ignore: tuple[str, ...] = ()) -> p.DockerBuild:
    return p.DockerBuild(ref, str(tmp_path), str(tmp_path / "Dockerfile"), live_update=steps,
                         ignore=ignore)


def decide(images: list[p.ImageTarget], *files: str, deployed: tuple[str, ...] = ("app",),
           exists=lambda path: True) -> lu.LiveUpdate | lu.FullBuild:
    return lu.decide(images, deployed, files, base="/", exists=exists)


def test_changed_files_under_a_sync_are_copied_to_the_remote_path(tmp_path):
    src = str(tmp_path / "src")
    target = image(tmp_path, p.SyncStep(src, "/app/src"))
    result = decide([target], f"{src}/main.py", f"{src}/pkg/util.py")
    assert isinstance(result, lu.LiveUpdate)
    (update,) = result.images
    assert update.copies == (lu.Copy(f"{src}/main.py", "/app/src/main.py"),
                             lu.Copy(f"{src}/pkg/util.py", "/app/src/pkg/util.py"))
    assert update.deletes == ()


def test_a_file_that_no_longer_exists_is_deleted_remotely(tmp_path):
    target = image(tmp_path, p.SyncStep(str(tmp_path), "/app"))
    result = decide([target], str(tmp_path / "gone.py"), exists=lambda path: False)
    assert isinstance(result, lu.LiveUpdate)
    assert result.images[0].deletes == ("/app/gone.py",)
    assert result.images[0].copies == ()


def test_a_file_outside_every_sync_falls_back_to_a_full_build(tmp_path):
    target = image(tmp_path, p.SyncStep(str(tmp_path / "src"), "/app"))
    result = decide([target], str(tmp_path / "requirements.txt"))
    assert isinstance(result, lu.FullBuild)
    assert "not under any sync() path" in result.reason


def test_fall_back_on_wins_over_a_sync_that_covers_the_file(tmp_path):
    lock = str(tmp_path / "package.json")
    target = image(tmp_path, p.FallBackOnStep((lock,)), p.SyncStep(str(tmp_path), "/app"))
    result = decide([target], str(tmp_path / "index.js"), lock)
    assert isinstance(result, lu.FullBuild)
    assert "matches fall_back_on" in result.reason


def test_fall_back_on_a_directory_covers_its_files(tmp_path):
    target = image(tmp_path, p.FallBackOnStep((str(tmp_path / "deps"),)),
                   p.SyncStep(str(tmp_path), "/app"))
    assert isinstance(decide([target], str(tmp_path / "deps" / "a.txt")), lu.FullBuild)


def test_run_steps_without_triggers_always_run_with_triggers_only_when_matched(tmp_path):
    always = p.RunStep(("sh", "-c", "make"), True)
    on_deps = p.RunStep(("pip", "install", "-r", "requirements.txt"), False,
                        triggers=(str(tmp_path / "requirements.txt"),))
    target = image(tmp_path, p.SyncStep(str(tmp_path), "/app"), always, on_deps)
    code = decide([target], str(tmp_path / "main.py"))
    assert isinstance(code, lu.LiveUpdate) and code.images[0].runs == (always,)
    deps = decide([target], str(tmp_path / "requirements.txt"))
    assert isinstance(deps, lu.LiveUpdate) and deps.images[0].runs == (always, on_deps)


def test_restart_container_ends_a_kubernetes_live_update_by_restarting_the_process(tmp_path):
    target = image(tmp_path, p.SyncStep(str(tmp_path), "/app"), p.RestartContainerStep())
    result = decide([target], str(tmp_path / "main.py"))
    assert isinstance(result, lu.LiveUpdate)
    assert [run.command for run in result.images[0].runs] == [touch_command()]


def test_an_image_without_live_update_rebuilds(tmp_path):
    result = decide([image(tmp_path)], str(tmp_path / "main.py"))
    assert isinstance(result, lu.FullBuild) and "has no live_update" in result.reason


def test_no_changed_files_is_a_full_build(tmp_path):
    assert isinstance(decide([image(tmp_path, p.SyncStep(str(tmp_path), "/app"))]),
                      lu.FullBuild)


def test_files_ignored_by_the_image_are_left_out(tmp_path):
    target = image(tmp_path, p.SyncStep(str(tmp_path), "/app"), ignore=("*.log",))
    result = decide([target], str(tmp_path / "main.py"), str(tmp_path / "debug.log"))
    assert isinstance(result, lu.LiveUpdate)
    assert [c.local for c in result.images[0].copies] == [str(tmp_path / "main.py")]
    assert isinstance(decide([target], str(tmp_path / "debug.log")), lu.FullBuild)


def test_only_the_images_whose_inputs_changed_are_updated(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = image(tmp_path / "a", p.SyncStep(str(tmp_path / "a"), "/a"), ref="a")
    second = image(tmp_path / "b", p.SyncStep(str(tmp_path / "b"), "/b"), ref="b")
    result = decide([first, second], str(tmp_path / "b" / "x.py"), deployed=("a", "b"))
    assert isinstance(result, lu.LiveUpdate)
    assert [u.image_ref for u in result.images] == ["b"]


def test_a_change_to_an_image_dep_rebuilds(tmp_path):
    base = image(tmp_path, p.SyncStep(str(tmp_path), "/app"), ref="base")
    result = decide([base], str(tmp_path / "x.py"), deployed=("app",))
    assert isinstance(result, lu.FullBuild) and "only other images build on" in result.reason


def test_custom_build_deps_and_ignore(tmp_path):
    deps = str(tmp_path / "src")
    target = p.CustomBuild("app", ("make",), False, (deps,), ignore=("*.tmp",),
                           live_update=(p.SyncStep(deps, "/srv"),))
    result = decide([target], f"{deps}/a.go", f"{deps}/b.tmp")
    assert isinstance(result, lu.LiveUpdate)
    assert result.images[0].copies == (lu.Copy(f"{deps}/a.go", "/srv/a.go"),)


def pod(name: str, image: str, *, restarts: int = 0, phase: str = "Running",
        deleting: bool = False, state: dict[str, object] | None = None
        ) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": "ns"}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "main", "restartCount": restarts,
                 "state": {"running": {}} if state is None else state}]}}


def waiting(reason: str) -> dict[str, object]:
    return {"waiting": {"reason": reason}}


def test_targets_are_the_running_containers_of_the_deployed_image():
    containers = lu.containers_of([pod("a", "reg/app:2"), pod("old", "reg/app:1"),
                                   pod("gone", "reg/app:2", deleting=True)], "default")
    targets = lu.targets_or_reason(containers, "reg/app:2", None)
    assert [str(t) for t in targets] == ["a/main"]


def test_no_running_container_is_a_full_build():
    for failing in (waiting("CrashLoopBackOff"), waiting("ErrImagePull"),
                    waiting("CreateContainerConfigError"), {"terminated": {"exitCode": 1}}):
        containers = lu.containers_of(
            [pod("a", "reg/app:2", phase="Pending", state=failing)], "ns")
        reason = lu.targets_or_reason(containers, "reg/app:2", None)
        assert isinstance(reason, lu.FullBuild) and "is not running" in reason.reason
    assert isinstance(lu.targets_or_reason([], "reg/app:2", None), lu.FullBuild)


def test_a_container_being_started_is_waited_for_not_rebuilt():
    # Being created, past its init containers, started but not yet reported by the pod's
    # phase, or not even reported yet: each runs the deployed image shortly.
    for phase, state in (("Pending", waiting("ContainerCreating")),
                         ("Pending", waiting("PodInitializing")),
                         ("Pending", {"running": {}}), ("Pending", {})):
        containers = lu.containers_of(
            [pod("a", "reg/app:2"), pod("b", "reg/app:2", phase=phase, state=state)], "ns")
        assert lu.targets_or_reason(containers, "reg/app:2", None) == \
            lu.Starting(containers[1]), (phase, state)
    # A new pod after a live update lacks the synced files however it is doing.
    synced = lu.Synced(frozenset({("ns", "a")}), {("ns", "a", "main"): 0})
    starting = lu.containers_of(
        [pod("a", "img"), pod("b", "img", phase="Pending", state=waiting("ContainerCreating"))],
        "ns")
    reason = lu.targets_or_reason(starting, "img", synced)
    assert isinstance(reason, lu.FullBuild) and "pod b started" in reason.reason


def test_a_restart_or_a_new_pod_after_a_live_update_needs_a_rebuild():
    synced = lu.Synced(frozenset({("ns", "a")}), {("ns", "a", "main"): 0})
    same = lu.containers_of([pod("a", "img")], "ns")
    assert not isinstance(lu.targets_or_reason(same, "img", synced), lu.FullBuild)
    restarted = lu.containers_of([pod("a", "img", restarts=1)], "ns")
    reason = lu.targets_or_reason(restarted, "img", synced)
    assert isinstance(reason, lu.FullBuild) and "restarted" in reason.reason
    new_pod = lu.containers_of([pod("a", "img"), pod("b", "img")], "ns")
    reason = lu.targets_or_reason(new_pod, "img", synced)
    assert isinstance(reason, lu.FullBuild) and "pod b started" in reason.reason
    # Without a live update since the deploy, restarts are harmless: the image is current.
    assert not isinstance(lu.targets_or_reason(restarted, "img", None), lu.FullBuild)


def test_the_archive_holds_files_and_directories_at_their_remote_paths(tmp_path):
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "skip.log").write_text("noise\n")
    archive = tar_archive([(str(tmp_path / "main.py"), "/app/main.py"),
                           (str(tmp_path / "pkg"), "/app/pkg"),
                           (str(tmp_path / "vanished.py"), "/app/vanished.py")],
                          skip=lambda path: path.endswith(".log"))
    with tarfile.open(fileobj=io.BytesIO(archive.data)) as tar:
        names = tar.getnames()
        assert tar.extractfile("app/main.py").read() == b"print(1)\n"
        assert tar.getmember("app/main.py").uid == 0
    assert names == ["app/main.py", "app/pkg", "app/pkg/mod.py"]
    assert archive.files == 2
    assert archive.overlaps(["/app/pkg/old.py"]) and archive.overlaps(["/app"])
    assert not archive.overlaps(["/app/other.py"])
