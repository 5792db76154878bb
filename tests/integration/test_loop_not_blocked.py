"""The event loop never waits on Docker or Kubernetes: every HTTP call they make runs off it.

Both the docker SDK and the kubernetes client speak HTTP through urllib3, so wrapping
urllib3's one entry point records which thread each call ran on. A call made while an
event loop is running in that thread would block the loop for the call's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import threading
from pathlib import Path

import pytest
import urllib3.connectionpool

from devloop.daemon.session import run_session

from .test_engine_ci import EXAMPLE, namespaced_kubeconfig

pytestmark = pytest.mark.integration


def test_ci_makes_no_docker_or_kubernetes_call_on_the_event_loop(
        testenv, k8s_namespace, tmp_path, monkeypatch):
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    monkeypatch.setenv("KUBECONFIG", str(namespaced_kubeconfig(testenv, k8s_namespace,
                                                               tmp_path)))
    monkeypatch.chdir(project)
    calls_on_loop: list[str] = []
    calls_off_loop: list[str] = []
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def recording_urlopen(self, method, url, *args, **kwargs):
        try:
            asyncio.get_running_loop()
            calls_on_loop.append(f"{method} {url} on {threading.current_thread().name}")
        except RuntimeError:
            calls_off_loop.append(f"{method} {url}")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen",
                        recording_urlopen)
    options = argparse.Namespace(command="ci", file=str(Path(project) / "Tiltfile"),
                                 timeout="8m", port=0, host="127.0.0.1", stream=True)
    assert asyncio.run(run_session(options, ("--no-worker",))) == 0
    # The run did talk to both (image tags and pushes, applies, pod reads, logs; builds go
    # through the buildx CLI, a child process)...
    assert any("/images/" in call for call in calls_off_loop)
    assert any("/apis/apps/v1/" in call for call in calls_off_loop)
    # ...and never from the loop's thread.
    assert calls_on_loop == []
