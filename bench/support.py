"""Shared set-up of the benchmarks: the test environment, a namespace, a copy of the example.

Every benchmark runs against the real test environment (`scripts/testenv up`), in a
namespace of its own that is deleted afterwards, on a private copy of `examples/shop`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "shop"


@dataclass(frozen=True)
class BenchEnv:
    project: Path
    kubeconfig: Path
    namespace: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}

    def devloop(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "devloop", *args]


def _testenv_exports() -> dict[str, str]:
    subprocess.run([str(ROOT / "scripts" / "testenv"), "up"], check=True,
                   stdout=subprocess.DEVNULL)
    out = subprocess.run([str(ROOT / "scripts" / "testenv"), "env"], check=True,
                         capture_output=True, text=True).stdout
    exports = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            exports[name] = os.path.expandvars(value)
    return exports


@contextlib.contextmanager
def bench_env(prefix: str) -> Iterator[BenchEnv]:
    exports = _testenv_exports()
    os.environ.update(exports)
    namespace = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kubectl = ["kubectl", "--kubeconfig", exports["KUBECONFIG"]]
    subprocess.run([*kubectl, "create", "namespace", namespace], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix=f"devloop-{prefix}-") as tmp:
        project = Path(tmp) / "shop"
        shutil.copytree(EXAMPLE, project)
        config = yaml.safe_load(Path(exports["KUBECONFIG"]).read_text())
        for context in config["contexts"]:
            if context["name"] == config["current-context"]:
                context["context"]["namespace"] = namespace
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(config))
        try:
            yield BenchEnv(project, kubeconfig, namespace)
        finally:
            subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


@contextlib.contextmanager
def running_up(env: BenchEnv, log_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("w") as log:
        process = subprocess.Popen(env.devloop("up", "--stream", "--port", "0", *args),
                                   cwd=env.project, env=env.env(), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 2)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return str(response.read().decode())


def wait_for(predicate: Callable[[], object], timeout: float, poll: float = 0.01) -> float:
    """Seconds until `predicate()` is truthy (exceptions count as not yet)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with contextlib.suppress(Exception):
            if predicate():
                return time.perf_counter() - start
        time.sleep(poll)
    raise TimeoutError(f"condition not met within {timeout}s")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def use_free_shop_ports(project: Path) -> tuple[str, str]:
    """Point a copy of the shop example's forwards at free ports (other runs may hold the
    example's); returns the api's and the web's URLs."""
    api_port, web_port = free_port(), free_port()
    tiltfile = project / "Tiltfile"
    tiltfile.write_text(tiltfile.read_text().replace('"18081:8080"', f'"{api_port}:8080"')
                        .replace("port_forward(18080,", f"port_forward({web_port},"))
    return f"http://127.0.0.1:{api_port}/", f"http://127.0.0.1:{web_port}/"
