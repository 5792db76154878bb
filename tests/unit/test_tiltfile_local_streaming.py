"""local() passes each output line on while its command runs, keeps stdout whole as its
result, is answered from the record on a rerun, and dies with the evaluation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.evaluator import evaluate
from devloop.tiltfile.isolated import ChildEvaluator, Limits
from devloop.tiltfile.local_command import run_streaming

# Prints "first", then waits (up to 10 s) for a file that only the test's output callback
# creates on seeing "first": if lines were passed on only at the end, "late" would follow.
WAITS_FOR_GO = ("echo first; i=0; while [ ! -e go ] && [ $i -lt 200 ]; do sleep 0.05; "
                "i=$((i+1)); done; if [ -e go ]; then echo second; else echo late; fi")


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "Tiltfile"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_lines_reach_the_output_while_the_command_runs(tmp_path: Path) -> None:
    path = _write(tmp_path, f"x = local({WAITS_FOR_GO!r})\nprint('result', str(x).split())\n")
    seen: list[str] = []

    def on_output(line: str) -> None:
        seen.append(line)
        if line == " → first":
            (tmp_path / "go").touch()

    result = evaluate(path, on_output=on_output)
    assert " → second" in seen and " → late" not in seen
    assert result.output[-1] == 'result ["first", "second"]'


def test_stdout_and_stderr_lines_arrive_in_order_and_stdout_is_the_result(tmp_path: Path
                                                                          ) -> None:
    seen: list[str] = []
    done = run_streaming(["sh", "-c", "echo out1; echo err1 >&2; sleep 0.2; echo out2; "
                          "printf 'no newline'"], cwd=str(tmp_path), env=os.environ,
                         input_text=None, on_line=seen.append)
    assert seen == ["out1", "err1", "out2", "no newline"]
    assert done.stdout == "out1\nout2\nno newline" and done.stderr == "err1\n"
    assert done.returncode == 0


def test_input_is_fed_while_output_is_read(tmp_path: Path) -> None:
    text = "line\n" * 50000  # larger than a pipe's buffer both ways
    seen: list[str] = []
    done = run_streaming(["cat"], cwd=str(tmp_path), env=os.environ, input_text=text,
                         on_line=seen.append)
    assert done.stdout == text and len(seen) == 50000


def test_a_failing_command_keeps_its_message_and_a_rerun_replays_it(tmp_path: Path) -> None:
    (tmp_path / "count").write_text("")
    (tmp_path / "inc.star").write_text("print('included')\n")
    path = _write(tmp_path, """
        x = local('echo run >> count; echo hello; echo oops >&2')
        for f in ['inc.star']:
            include(f)
        local('echo bad; exit 3')
    """)
    with pytest.raises(TiltfileError) as caught:
        evaluate(path)
    assert 'Command "echo bad; exit 3" failed' in caught.value.message
    assert "exit status 3" in caught.value.message and "bad" in caught.value.message
    # The include() of a computed path made the program run twice; each command ran once.
    assert (tmp_path / "count").read_text() == "run\n"


def test_a_rerun_prints_each_line_once(tmp_path: Path) -> None:
    (tmp_path / "inc.star").write_text("print('included')\n")
    path = _write(tmp_path, """
        local('echo hello')
        for f in ['inc.star']:
            include(f)
    """)
    seen: list[str] = []
    result = evaluate(path, on_output=seen.append)
    assert seen == ["local: echo hello", " → hello", "included"]
    assert result.output == tuple(seen)


def test_an_interrupt_kills_the_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_streaming(["sh", "-c", f"echo $$ > {pid_file}; echo started; exec sleep 600"],
                      cwd=str(tmp_path), env=os.environ, input_text=None, on_line=on_line)
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped
    assert seen == ["started"]


def test_the_evaluation_timeout_kills_a_streaming_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    path = _write(tmp_path, f"local('echo $$ > {pid_file}; echo waiting; exec sleep 600')\n")
    seen: list[str] = []
    with pytest.raises(TiltfileError) as caught:
        ChildEvaluator().evaluate(path, limits=Limits(timeout_secs=3), on_output=seen.append)
    assert "did not finish within 3 s" in caught.value.message
    assert "waiting" in caught.value.message  # the last line, streamed before the kill
    assert seen == [f"local: echo $$ > {pid_file}; echo waiting; exec sleep 600", " → waiting"]
    pid = int(pid_file.read_text())
    for _ in range(100):
        if _gone(pid):
            break
        time.sleep(0.05)
    assert _gone(pid)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is dead too (its parent, the killed child evaluator, may not be reaped yet).
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                           text=True, check=False).stdout.strip()
    return state.startswith("Z") or state == ""


def test_sigint_to_an_in_process_evaluation_kills_its_command(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = textwrap.dedent("""
        import sys
        from devloop.tiltfile.evaluator import evaluate
        from devloop.tiltfile.errors import TiltfileError
        try:
            evaluate(sys.argv[1], on_output=lambda line: print(line, flush=True))
        except TiltfileError as exc:
            print("error:", exc.message, flush=True)
    """)
    path = _write(tmp_path, f"local('echo $$ > {pid_file}; echo go; exec sleep 600')\n")
    child = subprocess.Popen([sys.executable, "-c", script, path], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip() == "→ go":
            break
    child.send_signal(signal.SIGINT)
    rest = child.stdout.read()
    assert child.wait(timeout=30) == 0
    assert "error: local: interrupted" in rest
    assert _gone(int(pid_file.read_text()))
