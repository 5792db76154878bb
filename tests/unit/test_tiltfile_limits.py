"""Evaluation limits: a Tiltfile that recurses, loops, eats memory or reads a device is
stopped with an error naming it, in a child process, and the caller lives on."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.evaluator import evaluate
from devloop.tiltfile.isolated import ChildEvaluator, Limits, evaluate_in_child

SMALL = Limits(timeout_secs=20, memory_bytes=600 * 2**20, max_read_bytes=2**20)


def _tiltfile(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "Tiltfile"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def _error(path: str, limits: Limits = SMALL) -> TiltfileError:
    with pytest.raises(TiltfileError) as caught:
        evaluate_in_child(path, limits=limits)
    return caught.value


def test_child_evaluation_returns_the_plan_and_streams_output(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, 'print("hello")\nlocal("echo from-local")\n'
                               'local_resource("x", serve_cmd="true")\n')
    lines: list[str] = []
    evaluation = evaluate_in_child(path, limits=SMALL, on_output=lines.append)
    assert [r.name for r in evaluation.plan.resources] == ["x"]
    assert lines == ["hello", "local: echo from-local", " → from-local"]
    assert str(tmp_path / "Tiltfile") in evaluation.plan.config_files


def test_unbounded_recursion_is_an_error_not_an_abort(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, "def f(n):\n    return f(n + 1)\nf(0)\n")
    error = _error(path)
    assert path in str(error)
    assert "stack overflow" in str(error) or "out of memory" in str(error)


def test_endless_loop_stops_at_the_time_limit(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, "for i in range(1000000000000):\n    pass\n")
    error = _error(path, Limits(timeout_secs=1.5, memory_bytes=SMALL.memory_bytes))
    assert "did not finish within 1.5 s" in str(error)
    assert "DEVLOOP_TILTFILE_TIMEOUT" in str(error)


def test_a_slow_local_names_its_command_and_dies_with_the_evaluation(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    # The limit leaves the child time to start even on a busy machine; the command would
    # leave its marker 2 s after the limit if it outlived the evaluation.
    path = _tiltfile(tmp_path, f'local("sleep 7 && touch {marker}; sleep 600")\n')
    error = _error(path, Limits(timeout_secs=5, memory_bytes=SMALL.memory_bytes))
    assert "last output: 'local: sleep 7" in str(error)
    time.sleep(3)
    assert not marker.exists(), "the command must be killed with the evaluation"


def test_cancel_stops_a_running_evaluation_and_its_command(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, 'local("sleep 600")\n')
    child = ChildEvaluator()
    started = threading.Event()
    threading.Timer(0.1, lambda: started.wait(10) and child.cancel()).start()
    with pytest.raises(TiltfileError, match="cancelled"):
        child.evaluate(path, limits=SMALL, on_output=lambda line: started.set())


def test_memory_limit_stops_a_growing_program(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, 'x = "a" * 1000\n'
                               "for i in range(100):\n    x = x + x\n")
    error = _error(path)
    assert "out of memory" in str(error)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_reading_a_device_is_refused(tmp_path: Path, device: str) -> None:
    path = _tiltfile(tmp_path, f'x = read_file("{device}")\n')
    error = _error(path)
    assert error.location is not None and error.location.line == 1
    assert f"{device} is not a regular file" in error.message


def test_reading_a_huge_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"a" * (2 * 2**20))
    path = _tiltfile(tmp_path, 'x = read_file("big")\nk8s_yaml("big")\n')
    error = _error(path)
    assert "larger than 1 MB" in error.message and "DEVLOOP_TILTFILE_MAX_READ_MB" in error.message


def test_nul_byte_in_the_tiltfile_is_an_error_at_its_position(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, b'print(1)\nx = "a\x00"\n')
    with pytest.raises(TiltfileError) as caught:
        evaluate(path)
    assert str(caught.value) == f"{path}:2:7: NUL byte in source"


def test_invalid_utf8_in_a_loaded_file_is_an_error_at_its_position(tmp_path: Path) -> None:
    (tmp_path / "lib.star").write_bytes(b'x = 1\ny = "\xe9t\xe9"\n')
    path = _tiltfile(tmp_path, 'load("lib.star", "x")\n')
    with pytest.raises(TiltfileError) as caught:
        evaluate(path)
    assert str(caught.value) == f"{tmp_path / 'lib.star'}:2:6: invalid UTF-8 (byte 0xe9)"


def test_limits_are_settable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVLOOP_TILTFILE_TIMEOUT", "12.5")
    monkeypatch.setenv("DEVLOOP_TILTFILE_MEMORY_MB", "300")
    monkeypatch.setenv("DEVLOOP_TILTFILE_MAX_READ_MB", "3")
    assert Limits.from_environ() == Limits(12.5, 300 * 2**20, 3 * 2**20)


def test_a_spare_child_is_ready_for_the_next_evaluation(tmp_path: Path) -> None:
    path = _tiltfile(tmp_path, 'print("one")\n')
    child = ChildEvaluator(keep_spare=True)
    try:
        first = child.evaluate(path, limits=SMALL)
        deadline = time.monotonic() + 10
        while child._spare is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the next spare starts in the background
        spare = child._spare
        assert spare is not None and spare.process.poll() is None
        second = child.evaluate(path, limits=SMALL)
        assert first.output == second.output == ("one",)
    finally:
        child.close()
    assert spare.process.wait(timeout=5) is not None
    assert child._spare is None


@pytest.mark.parametrize(("text", "expected"), [
    (b'x = "\x00"\n', "Tiltfile:1:6: NUL byte in source"),
    (b"x = '\xff'\n", "Tiltfile:1:6: invalid UTF-8 (byte 0xff)"),
    (b"def f(n):\n    return f(n + 1)\nf(0)\n", "evaluation aborted: "),
])
def test_tiltfile_result_reports_bad_input_without_a_traceback(
        tmp_path: Path, text: bytes, expected: str) -> None:
    (tmp_path / "Tiltfile").write_bytes(text)
    done = subprocess.run([sys.executable, "-m", "devloop", "tiltfile-result"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "DEVLOOP_TILTFILE_MEMORY_MB": "600"})
    assert done.returncode == 1, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
