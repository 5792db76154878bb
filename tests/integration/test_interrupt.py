"""Ctrl-C stops `devloop up` quietly at every stage, against the real cluster: while the
Tiltfile runs, while images build, while pods roll out and once everything is ready. The
process ends within seconds, with status 0 or 130 (or by SIGINT itself), and prints no
traceback."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.integration.projects_support import (
    REPO_ROOT,
    devloop_up,
    interrupt_and_wait,
    kubeconfig_for,
    wait_for,
)

pytestmark = pytest.mark.integration

SIGNS_OF_A_CRASH = ("Traceback", "CancelledError", "Task exception was never retrieved",
                    "Exception ignored")


@pytest.mark.parametrize("stage,reached", [
    ("starting", ""),
    ("building", "Building image shop-api"),
    ("rolling out", "Deployment/api applied"),
    ("ready", "Forwarding http://localhost:18080"),
])
def test_ctrl_c_stops_up_quietly(testenv, k8s_namespace, tmp_path: Path, stage: str,
                                 reached: str) -> None:
    project = tmp_path / "shop"
    shutil.copytree(REPO_ROOT / "examples" / "shop", project)
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    with devloop_up(project, kubeconfig, log_path) as process:
        if reached:
            wait_for(lambda: reached in log_path.read_text(), 240, f"{stage}: {reached!r}")
        else:
            time.sleep(0.3)  # Python started, the Tiltfile not yet evaluated
        started = time.monotonic()
        interrupt_and_wait(process)
        stopped_after = time.monotonic() - started
        output = log_path.read_text()
        # -SIGINT: ended by the signal itself, which a shell reports as 130 too. CPython
        # exits so when it counts a KeyboardInterrupt as unhandled; a Ctrl-C 0.15-0.4 s
        # after the start ends so now and then, with nothing printed.
        assert process.returncode in (0, 130, -signal.SIGINT), (
            process.returncode, output[-3000:])
        assert stopped_after < 20, f"Ctrl-C took {stopped_after:.1f} s"
        crash = [line for line in output.splitlines()
                 if any(sign in line for sign in SIGNS_OF_A_CRASH)]
        assert not crash, output[-5000:]
