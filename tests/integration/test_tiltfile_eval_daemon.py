"""A real `devloop up` survives a Tiltfile that crashes or hangs its evaluation, applies the
fixed Tiltfile on the next reload, and stops on Ctrl-C while a load-time local() runs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVE = 'local_resource("hello", serve_cmd="while true; do echo tick-{v}; sleep 0.5; done")\n'


def _wait_for_log(log: Path, text: str, timeout: float, *, after: int = 0) -> int:
    """Wait until `text` appears in the log past offset `after`; returns its offset."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = log.read_text(errors="replace").find(text, after)
        if found >= 0:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {text!r}; log:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def _up(project: Path, log: Path, environ: dict[str, str]):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEVLOOP_STATE_DIR": str(project / ".state"),
           **environ}
    with log.open("w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "devloop", "up", "--stream",
                                    "--port", "0"], cwd=project, env=env, stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_daemon_survives_a_crashing_tiltfile_and_applies_the_fix(tmp_path: Path) -> None:
    tiltfile, log = tmp_path / "Tiltfile", tmp_path / "up.log"
    tiltfile.write_text(SERVE.format(v="v1"))
    with _up(tmp_path, log, {"DEVLOOP_TILTFILE_MEMORY_MB": "600",
                             "DEVLOOP_TILTFILE_TIMEOUT": "5"}) as process:
        _wait_for_log(log, "tick-v1", 60)

        tiltfile.write_text("def f(n):\n    return f(n + 1)\nf(0)\n")
        crashed = _wait_for_log(log, "evaluation aborted", 60)
        assert "stack overflow" in log.read_text()[crashed:crashed + 300] or \
            "out of memory" in log.read_text()[crashed:crashed + 300]
        assert process.poll() is None, "the daemon must survive the crash"
        _wait_for_log(log, "tick-v1", 10, after=crashed)  # the old state keeps running

        tiltfile.write_text("for i in range(1000000000000):\n    pass\n")
        stopped = _wait_for_log(log, "did not finish within 5 s", 30, after=crashed)
        assert process.poll() is None

        tiltfile.write_text(SERVE.format(v="v2"))
        _wait_for_log(log, "tick-v2", 60, after=stopped)
        assert process.poll() is None
        assert "Traceback" not in log.read_text()


def test_ctrl_c_stops_up_while_a_load_time_local_runs(tmp_path: Path) -> None:
    tiltfile, log = tmp_path / "Tiltfile", tmp_path / "up.log"
    marker = tmp_path / "sleep-survived"
    tiltfile.write_text(SERVE.format(v="v1"))
    with _up(tmp_path, log, {}) as process:
        _wait_for_log(log, "tick-v1", 60)
        tiltfile.write_text(f'local("sleep 3 && touch {marker}; sleep 600")\n'
                            + SERVE.format(v="v2"))
        _wait_for_log(log, "local: sleep 3", 30)  # what the reload waits for is shown
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=20) is not None
        time.sleep(4)
        assert not marker.exists(), "the load-time command must stop with devloop"


def test_an_edit_during_a_hanging_load_time_local_applies_at_once(tmp_path: Path) -> None:
    tiltfile, log = tmp_path / "Tiltfile", tmp_path / "up.log"
    tiltfile.write_text(SERVE.format(v="v1"))
    with _up(tmp_path, log, {}) as process:
        _wait_for_log(log, "tick-v1", 60)
        tiltfile.write_text('local("sleep 600")\n' + SERVE.format(v="v2"))
        waiting = _wait_for_log(log, "local: sleep 600", 30)
        tiltfile.write_text(SERVE.format(v="v3"))
        _wait_for_log(log, "tick-v3", 60, after=waiting)
        assert "tick-v2" not in log.read_text()[waiting:]
        assert process.poll() is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopping_up_during_the_first_evaluation_leaves_no_command_behind(
        tmp_path: Path, sig: signal.Signals) -> None:
    tiltfile, log = tmp_path / "Tiltfile", tmp_path / "up.log"
    marker = tmp_path / "sleep-survived"
    tiltfile.write_text(f'local("echo started; sleep 3 && touch {marker}; sleep 600")\n')
    with _up(tmp_path, log, {}) as process:
        deadline = time.monotonic() + 60
        while not subprocess.run(["pgrep", "-f", str(marker)], capture_output=True).stdout:
            assert time.monotonic() < deadline, "the load-time command never started"
            time.sleep(0.1)
        os.killpg(process.pid, sig)
        process.wait(timeout=20)
        time.sleep(4)
        assert not marker.exists(), "the load-time command must stop with devloop"


def test_up_says_what_a_slow_first_evaluation_waits_for(tmp_path: Path) -> None:
    """The terminal UI starts once the Tiltfile has run; until then `up` says it is still
    running and shows its last line, instead of showing nothing."""
    tiltfile, log = tmp_path / "Tiltfile", tmp_path / "up.log"
    finished = tmp_path / "finished"
    tiltfile.write_text(f'print("fetching charts")\nlocal("sleep 7; touch {finished}")\n'
                        + SERVE.format(v="v1"))
    with _up(tmp_path, log, {}):
        notice = _wait_for_log(log, "the Tiltfile is still running", 30)
        assert not finished.exists(), "the notice must come while the Tiltfile runs"
        assert "last output: " in log.read_text()[notice:notice + 200]
        _wait_for_log(log, "tick-v1", 60, after=notice)


def test_ci_prints_the_first_evaluation_output_as_it_comes(tmp_path: Path) -> None:
    tiltfile = tmp_path / "Tiltfile"
    finished = tmp_path / "finished"
    tiltfile.write_text(f'print("fetching charts")\nlocal("sleep 5; touch {finished}")\n'
                        'local_resource("done", cmd="true")\n')
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DEVLOOP_STATE_DIR": str(tmp_path / ".state")}
    process = subprocess.Popen([sys.executable, "-m", "devloop", "ci", "--port", "0"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        seen_while_running = False
        for line in process.stdout:
            if "fetching charts" in line:
                seen_while_running = not finished.exists()
                break
        assert seen_while_running, "the printed line must appear before the Tiltfile ends"
        rest = process.stdout.read()
        assert process.wait(timeout=120) == 0, rest
        assert rest.count("fetching charts") == 0, "each line is printed once"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
