"""The terminal UI in a real terminal: tmux runs it, capture-pane reads the screen.

No cluster is needed: the Tiltfile has only local resources. The pane runs a plain shell, so
after quitting we can check, in that same shell, that the terminal got its mode back.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_engine_ci import _wait_for

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 140, 36
# Bounds for things that take well under a second; only there so a broken UI fails the test
# instead of hanging it.
SCREEN_TIMEOUT = 60.0

TILTFILE = """\
local_resource('greeter', serve_cmd='echo hello-from-greeter; exec sleep 100000')
local_resource('builder', cmd='echo built-it')
"""


@pytest.fixture(scope="session")
def tmux_binary() -> str:
    """tmux, installed with apt-get when missing. Fails (never skips) if that is impossible."""
    found = shutil.which("tmux")
    if found:
        return found
    try:
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "tmux"]):
            subprocess.run(command, check=True, capture_output=True, text=True, timeout=600,
                           env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/bin:/bin:"
                                "/usr/sbin:/sbin"})
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(f"tmux is missing and apt-get could not install it: {exc}", pytrace=False)
    found = shutil.which("tmux")
    if not found:
        pytest.fail("apt-get installed tmux but it is not on PATH", pytrace=False)
    return found


class Pane:
    """One tmux server (its own socket) with one window running a plain shell."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.tmux, self.socket = tmux, socket

    def run(self, *args: str) -> str:
        return subprocess.run([self.tmux, "-S", str(self.socket), *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def type(self, line: str) -> None:
        self.run("send-keys", "-t", "ui", "-l", line)
        self.run("send-keys", "-t", "ui", "Enter")

    def keys(self, *names: str) -> None:
        self.run("send-keys", "-t", "ui", *names)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "ui")

    def flag(self, name: str) -> str:
        return self.run("display-message", "-p", "-t", "ui", f"#{{{name}}}").strip()

    def wait_for_screen(self, *texts: str, what: str) -> str:
        return _wait_for(lambda: (screen := self.screen()) and all(t in screen for t in texts)
                         and screen, SCREEN_TIMEOUT, what)


@pytest.fixture
def pane(tmux_binary: str, tmp_path: Path) -> Iterator[Pane]:
    socket = tmp_path / "tmux.sock"
    subprocess.run([tmux_binary, "-S", str(socket), "-f", "/dev/null", "new-session", "-d",
                    "-s", "ui", "-x", str(WIDTH), "-y", str(HEIGHT),
                    "env -i PATH=/usr/bin:/bin HOME=/tmp TERM=tmux-256color LANG=C.UTF-8 "
                    "bash --norc --noprofile"],
                   check=True, timeout=30, env={"PATH": "/usr/bin:/bin", "TERM": "xterm",
                                                 "LANG": "C.UTF-8"})
    created = Pane(tmux_binary, socket)
    try:
        yield created
    finally:
        subprocess.run([tmux_binary, "-S", str(socket), "kill-server"], check=False,
                       timeout=30, capture_output=True)


def _run_and_record(pane: Pane, directory: Path, command: str) -> tuple[Path, Path, Path]:
    """Types `command` into the pane's shell between two `stty -g` snapshots and records
    its exit status."""
    before, after, status = (directory / "stty-before", directory / "stty-after",
                             directory / "exit-status")
    pane.type(f"cd {shlex.quote(str(directory))} && stty -g > {before}; {command}; "
              f"echo $? > {status}.tmp; stty -g > {after}; mv {status}.tmp {status}")
    return before, after, status


def _assert_exits_zero_and_restores_the_terminal(pane: Pane, files: tuple[Path, Path, Path]):
    before, after, status = files
    _wait_for(status.exists, SCREEN_TIMEOUT, "the UI to exit after q")
    assert status.read_text().strip() == "0", pane.screen()
    assert after.read_text() == before.read_text()  # cooked mode and echo are back
    assert pane.flag("alternate_on") == "0"
    assert pane.flag("cursor_flag") == "1"


def table_rows(screen: str) -> dict[str, str]:
    """Resource name -> its table line: the lines between the table's rule and the logs."""
    lines = screen.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("─"))
    end = next(i for i, line in enumerate(lines) if line.startswith("logs of"))
    return {line.lstrip("▸ ").split()[0]: line for line in lines[start + 1:end] if line.strip()}


def _python_env() -> str:
    # The pane's shell starts with an empty environment; the UI must not depend on ours.
    return f"PYTHONPATH={shlex.quote(str(REPO_ROOT))} {shlex.quote(sys.executable)}"


def test_demo_screen_shows_resources_and_logs_and_q_restores_the_terminal(pane, tmp_path):
    files = _run_and_record(pane, tmp_path, f"{_python_env()} -m devloop.hud.demo")
    screen = pane.wait_for_screen("logs of all resources", "hello from worker",
                                  what="the demo's first frame")
    assert pane.flag("alternate_on") == "1"
    rows = table_rows(screen)
    assert rows["api"].startswith("▸ api")
    assert "ready" in rows["api"] and "http://127.0.0.1:18081/" in rows["api"]
    assert "error" in rows["worker"] and "CrashLoopBackOff" in rows["worker"]
    assert "building" in rows["web"]

    pane.keys("j")
    pane.wait_for_screen("▸ web", what="the selection to move to web")
    pane.keys("Enter")
    screen = pane.wait_for_screen("logs of web", what="web's own logs")
    assert "hello from api" not in screen
    pane.keys("t")
    pane.wait_for_screen("Update #2 (triggered)", "triggered web", what="the trigger")
    pane.keys("q")
    _assert_exits_zero_and_restores_the_terminal(pane, files)


def test_devloop_up_screen_shows_local_resources_and_q_ends_the_session(pane, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "Tiltfile").write_text(TILTFILE)
    files = _run_and_record(pane, project, f"{_python_env()} -m devloop up --port 0")
    pane.wait_for_screen("hello-from-greeter", "built-it", what="both resources' logs")
    rows = _wait_for(lambda: (rows := table_rows(pane.screen())) and all(
        "ready" in rows.get(name, "").split() for name in ("greeter", "builder")) and rows,
        SCREEN_TIMEOUT, "both resources ready in the table")
    assert "serving" in rows["greeter"]  # the serve_cmd's runtime reason
    assert rows["greeter"].startswith("▸ greeter")

    pane.keys("Down")
    pane.wait_for_screen("▸ builder", what="the selection to move to builder")
    pane.keys("Enter")
    screen = pane.wait_for_screen("logs of builder", what="builder's own logs")
    assert "hello-from-greeter" not in screen
    pane.keys("t")
    pane.wait_for_screen("Update #2 (triggered)", what="builder to run again")
    pane.keys("q")
    _assert_exits_zero_and_restores_the_terminal(pane, files)
