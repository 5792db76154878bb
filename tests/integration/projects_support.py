"""Helpers for running devloop on whole projects: kubeconfigs, `ci`, `up` in the background."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECTS = REPO_ROOT / "tests" / "projects"
T = TypeVar("T")
# The cluster pulls nothing from public registries: testenv pushes busybox to its registry.
CLUSTER_BUSYBOX = "localhost:5000/busybox:latest"
# Lines of `devloop up`'s log shown when a test fails while it runs.
LOG_TAIL_LINES = 150


def copy_project(name: str, target: Path) -> Path:
    """A private copy of tests/projects/<name>, so a test can edit it."""
    destination = target / name
    shutil.copytree(PROJECTS / name, destination)
    return destination


def kubeconfig_for(testenv: Any, namespace: str, directory: Path, *,
                   context: str = "") -> Path:
    """The test cluster's kubeconfig with `namespace` as the context's namespace (and the
    context renamed to `context` when given), so an unmodified Tiltfile deploys there."""
    config = yaml.safe_load(testenv.kubeconfig.read_text())
    current = config["current-context"]
    for entry in config["contexts"]:
        if entry["name"] == current:
            entry["context"]["namespace"] = namespace
            if context:
                entry["name"] = context
    if context:
        config["current-context"] = context
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def devloop(args: list[str], *, cwd: Path, kubeconfig: Path, timeout: float = 600,
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "devloop", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return response.status, response.read().decode()


def wait_for(predicate: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not there yet
            last_error = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


@contextlib.contextmanager
def devloop_up(project: Path, kubeconfig: Path, log_path: Path,
               *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`devloop up --stream` in its own process group, stopped with Ctrl-C at the end."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PYTHONUNBUFFERED": "1"}
    with log_path.open("w") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "devloop", "up", "--stream",
                                    "--port", "0", *args], cwd=project, env=env,
                                   stdout=log_file, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    except BaseException:
        # pytest shows a failed test's captured output: what devloop said is the evidence.
        print(f"--- the last {LOG_TAIL_LINES} lines of `devloop up` ({log_path.name}):")
        print("\n".join(log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]))
        raise
    finally:
        interrupt_and_wait(process)


def interrupt_and_wait(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the process's group, as a user would; SIGKILL only if it ignores that."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def deployment(name: str, command: str, *, image: str = CLUSTER_BUSYBOX, port: int = 0,
               grace: int = 1, env: dict[str, str] | None = None,
               readiness: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-container Deployment running `command` with sh."""
    container: dict[str, Any] = {"name": "main", "image": image,
                                 "command": ["sh", "-c", command]}
    if port:
        container["ports"] = [{"containerPort": port}]
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if readiness:
        container["readinessProbe"] = readiness
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": grace,
                         "containers": [container]}}}}


def write_project(directory: Path, tiltfile: str, objects: list[dict[str, Any]],
                  files: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Tiltfile").write_text(tiltfile)
    (directory / "k8s.yaml").write_text(yaml.safe_dump_all(objects))
    for name, text in (files or {}).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory
