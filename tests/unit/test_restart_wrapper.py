"""The restart wrapper: the command it wraps, the Dockerfile it builds, and the sh loop."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from devloop.build import restart_wrapper as rw
from devloop.engine import live_update as lu
from devloop.model import plan as p

RESTART = (p.SyncStep("/src", "/app"), p.RestartContainerStep())


def build(tmp_path: Path, text: str, **fields: object) -> p.DockerBuild:
    (tmp_path / "Dockerfile").write_text(text)
    return p.DockerBuild("app", str(tmp_path), str(tmp_path / "Dockerfile"),
                         live_update=fields.pop("live_update", RESTART), **fields)  # type: ignore[arg-type]


def test_the_dockerfile_command_is_entrypoint_then_cmd():
    text = 'FROM scratch\nENTRYPOINT ["python", "-u"]\nCMD ["app.py"]\n'
    assert rw.dockerfile_command(text) == (["python", "-u"], ["app.py"], "scratch")


def test_shell_form_runs_in_sh():
    assert rw.dockerfile_command("FROM alpine\nCMD python app.py\n") == (
        None, ["/bin/sh", "-c", "python app.py"], "alpine")


def test_an_entrypoint_resets_the_cmd_it_inherits_from_a_stage():
    text = ('FROM alpine AS base\nCMD ["serve"]\n'
            'FROM base\nENTRYPOINT ["/run"]\n')
    assert rw.dockerfile_command(text) == (["/run"], [], "alpine")


def test_a_target_stage_and_its_parents_give_the_command():
    text = ('FROM python:3.11 AS base\nCMD ["python", "a.py"]\n'
            'FROM base AS dev\nWORKDIR /app\n'
            'FROM alpine\nCMD ["other"]\n')
    assert rw.dockerfile_command(text, "dev") == (None, ["python", "a.py"], "python:3.11")


def test_docker_build_entrypoint_overrides_the_dockerfile(tmp_path):
    target = build(tmp_path, 'FROM scratch\nCMD ["x"]\n', entrypoint=("python", "app.py"))
    assert rw.command_of(target) == ["python", "app.py"]


def test_wrap_appends_the_wrapper_entrypoint_to_the_final_stage(tmp_path):
    target = build(tmp_path, 'FROM scratch\nCMD ["/bin/app", "--port", "80"]\n')
    wrapped = rw.wrap(target)
    lines = (wrapped.dockerfile_contents or "").splitlines()
    assert lines[:2] == ["FROM scratch", 'CMD ["/bin/app", "--port", "80"]']
    assert lines[2].startswith("ENTRYPOINT ") and lines[3] == "CMD []"
    assert json.loads(lines[2][len("ENTRYPOINT "):]) == rw.entrypoint(
        ["/bin/app", "--port", "80"])
    assert wrapped.target == ""


def test_wrap_with_a_target_builds_a_stage_on_top_of_it(tmp_path):
    target = build(tmp_path, 'FROM scratch AS dev\nCMD ["a"]\nFROM scratch\nCMD ["b"]\n',
                   target="dev")
    wrapped = rw.wrap(target)
    assert wrapped.target == rw.STAGE
    assert f"FROM dev AS {rw.STAGE}" in (wrapped.dockerfile_contents or "")
    assert json.dumps(rw.entrypoint(["a"])) in (wrapped.dockerfile_contents or "")


def test_an_image_without_restart_is_left_alone(tmp_path):
    target = build(tmp_path, "FROM scratch\n", live_update=(p.SyncStep("/src", "/app"),))
    assert rw.wrap(target) is target


def test_no_command_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(rw.WrapError, match="no ENTRYPOINT or CMD"):
        rw.wrap(build(tmp_path, "FROM scratch\nWORKDIR /app\n"))


def test_a_custom_build_with_restart_container_still_rebuilds(tmp_path):
    target = p.CustomBuild("app", ("make",), False, (str(tmp_path),),
                           live_update=(p.SyncStep(str(tmp_path), "/app"),
                                        p.RestartContainerStep()))
    result = lu.decide([target], ("app",), [str(tmp_path / "a.py")], base="/",
                       exists=lambda path: True)
    assert isinstance(result, lu.FullBuild) and "restart_container()" in result.reason


def wait_for(path: Path, want: str, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if lines.count("start") >= int(want):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{path}: {path.read_text() if path.exists() else 'missing'}")


def test_the_sh_loop_restarts_the_command_when_the_marker_changes(tmp_path):
    log = tmp_path / "log"
    marker = tmp_path / "marker"
    child = ["sh", "-c", f'echo start >> {log}; trap "exit 0" TERM; while :; do sleep 0.05; done']
    argv = ["sh", "-c", rw.SCRIPT, "restart-test", str(marker), "restart", *child]
    process = subprocess.Popen(argv, start_new_session=True)
    try:
        wait_for(log, "1")
        marker.write_text("1\n")
        wait_for(log, "2")
        marker.write_text("2\n")
        assert wait_for(log, "3").count("start") == 3
        process.terminate()
        assert process.wait(timeout=10) == 143
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)


def test_the_sh_loop_exits_with_the_command_under_the_restart_policy(tmp_path):
    argv = ["sh", "-c", rw.SCRIPT, "restart-test", str(tmp_path / "m"), "restart",
            "sh", "-c", "exit 7"]
    assert subprocess.run(argv, timeout=10, check=False).returncode == 7


def test_a_base_image_change_is_live_updated_by_the_image_on_top_of_it(tmp_path):
    # custom_build_with_restart: the user's build is a base; the image on top syncs.
    base = p.CustomBuild("app-base", ("make",), False, (str(tmp_path),))
    top = p.DockerBuild("app", "/ext", "/ext/Dockerfile", dockerfile_contents="FROM app-base\n",
                        image_deps=("app-base",),
                        live_update=(p.SyncStep(str(tmp_path), "/app"),
                                     p.RestartContainerStep()))
    result = lu.decide([base, top], ("app",), [str(tmp_path / "a.py")], base="/",
                       exists=lambda path: True)
    assert isinstance(result, lu.LiveUpdate)
    (update,) = result.images
    assert update.image_ref == "app"
    assert update.copies == (lu.Copy(str(tmp_path / "a.py"), "/app/a.py"),)
    as_deployed = lu.decide([base, top], ("app-base", "app"), [str(tmp_path / "a.py")],
                            base="/", exists=lambda path: True)
    assert as_deployed == result
    outside = lu.decide([base, top], ("app",), ["/elsewhere/b.py"], base="/",
                        exists=lambda path: True)
    assert isinstance(outside, lu.FullBuild)


def _sleeping(token: str) -> int:
    """How many `sleep TOKEN` processes run."""
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == (
                    f"sleep\0{token}\0".encode()):
                count += 1
        except OSError:
            continue
    return count


def test_a_restart_stops_what_the_command_started_too(tmp_path):
    # `sh -c` that does not exec: its own child must not outlive the restart.
    log = tmp_path / "log"
    marker = tmp_path / "marker"
    token = f"{time.time_ns() % 1000}.{os.getpid()}"
    child = ["sh", "-c", f"echo start >> {log}; sleep {token}; echo after"]
    argv = ["sh", "-c", rw.SCRIPT, "restart-test", str(marker), "restart", *child]
    process = subprocess.Popen(argv, start_new_session=True)
    try:
        wait_for(log, "1")
        marker.write_text("1\n")
        wait_for(log, "2")
        deadline = time.monotonic() + 10
        while _sleeping(token) != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sleeping(token) == 1
        process.terminate()  # the wrapper stops the command's group on its way out
        assert process.wait(timeout=10) == 143
        deadline = time.monotonic() + 10
        while _sleeping(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sleeping(token) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
