"""A real `devloop up` (local resources only: no cluster needed) under slow and vanished API
clients: a follower that never reads is dropped, streams whose clients left end, the daemon's
memory stays bounded and it keeps answering."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.projects_support import interrupt_and_wait

pytestmark = pytest.mark.integration

# About 4,000 lines of 100 characters a second, for as long as the test runs.
CHATTY = ("i=0; while true; do for j in $(seq 200); do i=$((i+1)); "
          "echo \"line $i $(printf '%090d' 0)\"; done; sleep 0.05; done")
START_TIMEOUT = 60
GUARD = 90  # bounds a hang of the code before the fix; nothing here is timed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            value = predicate()
            if value:
                return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def chatty_daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Tiltfile").write_text(f"local_resource('chatty', serve_cmd={CHATTY!r})\n")
    port = free_port()
    env = {**os.environ, "DEVLOOP_STATE_DIR": str(tmp_path / "state"),
           "KUBECONFIG": str(tmp_path / "no-cluster"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "devloop", "up", "--stream", "--port",
                                str(port)], cwd=project, env=env, stdout=subprocess.DEVNULL,
                               stderr=(tmp_path / "stderr.log").open("wb"),
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/api/v1/logs?resource=chatty&limit=1")["last"] > 1000,
                 START_TIMEOUT, "the daemon and its chatty resource")
        yield process, base
    finally:
        interrupt_and_wait(process)
    assert b"Traceback" not in (tmp_path / "stderr.log").read_bytes()


def open_stream(base: str, path: str) -> socket.socket:
    """A client that sends its request and never reads, with a tiny receive buffer."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    return sock


def open_streams(base: str) -> int:
    return get(f"{base}/api/v1")["openStreams"]


def test_a_follower_that_never_reads_is_dropped_and_memory_stays_bounded(tmp_path):
    with chatty_daemon(tmp_path) as (process, base):
        # Fill the resource's log budget first, so what grows afterwards is the client's.
        wait_for(lambda: get(f"{base}/api/v1/logs?resource=chatty&limit=0")["dropped"].get(
            "chatty", 0) > 0, GUARD, "the log budget to fill")
        before = rss_mib(process.pid)
        stuck = open_stream(base, "/api/v1/logs?follow=1")
        wait_for(lambda: open_streams(base) == 1, GUARD, "the follow to start")
        wait_for(lambda: open_streams(base) == 0, GUARD, "the stuck follower to be dropped")
        after = rss_mib(process.pid)
        print(f"daemon RSS with a follower that never reads: {before:.1f} -> {after:.1f} MiB")
        stuck.setblocking(False)
        with contextlib.suppress(BlockingIOError, ConnectionResetError):
            while stuck.recv(1 << 20):
                pass  # what the server had sent; then the end
        stuck.close()
        assert after - before < 64, "a bounded client buffer is 4 MiB"
        assert get(f"{base}/api/v1/logs?limit=1")["lines"]


def test_streams_end_when_their_clients_go_even_if_nothing_matches(tmp_path):
    with chatty_daemon(tmp_path) as (_, base):
        clients = [open_stream(base, "/api/v1/logs?follow=1&q=matches-nothing")
                   for _ in range(100)]
        clients += [open_stream(base, "/api/v1/nothing?watch=1") for _ in range(100)]
        wait_for(lambda: open_streams(base) == 200, GUARD, "200 streams to open")
        for sock in clients:
            sock.close()
        wait_for(lambda: open_streams(base) == 0, GUARD, "every stream to end")
        assert get(f"{base}/api/v1/logs?resource=chatty&limit=1")["lines"]
