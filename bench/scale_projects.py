"""Shared parts of the scale benchmarks: generated projects, a `devloop up` daemon, /proc.

A generated project is a directory with a Tiltfile of `local` resources (each a
`serve_cmd`, optionally with a `cmd` and `deps`) and `deployments` cheap Kubernetes
Deployments (one busybox container sleeping, from the test environment's registry, no
image build), which `k8s_resource` names `deploy-<i>`. The daemon is the real `devloop up
--stream --port 0` in its own process group, stopped with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from support import wait_for

ROOT = Path(__file__).resolve().parents[1]
BUSYBOX = "localhost:5000/busybox:latest"
URL_LINE = re.compile(r"API and dashboard: (http://\S+)")


def tiltfile(*, local: int, deployments: int, serve_cmd: str = "sleep 86400",
             cmd: str = "", deps: str = "", labels: int = 10) -> str:
    """A Tiltfile of `local` local resources and `deployments` Deployments (k8s/*.yaml),
    spread over `labels` labels."""
    lines = []
    if deployments:
        lines.append('k8s_yaml(listdir("k8s"))')
    for index in range(deployments):
        lines.append(f'k8s_resource("deploy-{index}", labels=["group-{index % labels}"])')
    for index in range(local):
        options = [f'serve_cmd="{serve_cmd}"', f'labels=["group-{index % labels}"]']
        if cmd:
            options.append(f'cmd="{cmd}"')
        if deps:
            options.append(f'deps=["{deps}"]')
        lines.append(f'local_resource("local-{index}", {", ".join(options)})')
    return "\n".join(lines) + "\n"


def deployment(name: str) -> dict[str, Any]:
    """A Deployment of one busybox container that sleeps: ready at once, no CPU after."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                "name": "main", "image": BUSYBOX, "command": ["sleep", "86400"],
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}}}]}}}}


def write_project(root: Path, *, local: int, deployments: int, **options: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if deployments:
        (root / "k8s").mkdir(exist_ok=True)
        for index in range(deployments):
            name = f"deploy-{index}"
            (root / "k8s" / f"{name}.yaml").write_text(yaml.safe_dump(deployment(name)))
    (root / "Tiltfile").write_text(tiltfile(local=local, deployments=deployments, **options))
    return root


# -- the daemon

@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.perf_counter() just before the process was started
    url: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_url(self, timeout: float = 120.0) -> str:
        def found() -> str:
            match = URL_LINE.search(self.log_path.read_text(errors="replace"))
            return match.group(1) if match else ""

        wait_for(found, timeout, poll=0.005)
        self.url = found()
        return self.url

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:  # noqa: S310
            return json.loads(response.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Origin": self.url})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def resources(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/api/v1/resource")["items"]
        return items


@contextlib.contextmanager
def running_up(project: Path, log_path: Path, *, env: dict[str, str] | None = None,
               args: tuple[str, ...] = ()) -> Iterator[Daemon]:
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "devloop", "up", "--stream",
                                    "--port", "0", *args], cwd=project, env=environ,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield Daemon(process, log_path, started)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# -- /proc

def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu_percent(pid: int, seconds: float) -> float:
    """The process's CPU use over `seconds` of wall time, in % of one core."""
    before, start = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - start) * 100


def children(pid: int) -> list[int]:
    """Direct child processes of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    found.append(int(entry.name))
    return found


def verdict(value: float, goal: float) -> str:
    return "meets the goal" if value <= goal else "MISSES the goal"


def figure(label: str, value: float, unit: str, goal: float | None = None,
           precision: int = 1) -> str:
    text = f"  {label}: {value:.{precision}f} {unit}"
    if goal is not None:
        text += f"   (goal <= {goal:g} {unit}: {verdict(value, goal)})"
    return text


def cluster_env(prefix: str) -> contextlib.AbstractContextManager[Any]:
    """The test environment with a fresh namespace (bench/support.py's `bench_env`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from support import bench_env

    return bench_env(prefix)
