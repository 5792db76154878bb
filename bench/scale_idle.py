"""Benchmark: the daemon's memory and CPU with 20 idle resources.

How: a generated project (bench/scale_projects.py) of 20 resources runs under the real
`devloop up --stream --port 0`: either 20 local resources (a `serve_cmd` that sleeps) or 20
Kubernetes Deployments (busybox sleeping, no image build; needs the test environment, in a
namespace of its own). Once every resource is ready (runtimeStatus ok through the API) and
10 s have passed, the figures are read from /proc: the daemon process's VmRSS (its Tiltfile
evaluator child, kept warm for reloads, is reported apart), and its CPU time (utime+stime,
all threads) over a 20 s window with no changes.

    python bench/scale_idle.py [local|k8s|both]     (default: both)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale_projects import (
    children,
    cluster_env,
    figure,
    idle_cpu_percent,
    rss_mib,
    running_up,
    wait_for,
    write_project,
)

RESOURCES = 20
SETTLE_SECONDS = 10.0
IDLE_WINDOW_SECONDS = 20.0
GOAL_RSS_MIB = 60.0
GOAL_IDLE_CPU_PERCENT = 0.5


def measure(kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="devloop-scale-idle-") as tmp:
        env: dict[str, str] = {}
        cluster = cluster_env("bench-idle") if kind == "k8s" else None
        with cluster if cluster is not None else _nothing() as bench:
            if bench is not None:
                env["KUBECONFIG"] = str(bench.kubeconfig)
            project = write_project(Path(tmp) / "project",
                                    local=RESOURCES if kind == "local" else 0,
                                    deployments=RESOURCES if kind == "k8s" else 0)
            with running_up(project, Path(tmp) / "up.log", env=env) as daemon:
                daemon.wait_url()
                ready = wait_for(lambda: _all_ready(daemon.resources()), 600, poll=0.2)
                time.sleep(SETTLE_SECONDS)
                rss = rss_mib(daemon.pid)
                cpu = idle_cpu_percent(daemon.pid, IDLE_WINDOW_SECONDS)
                rss_after = rss_mib(daemon.pid)
                spare = sum(rss_mib(child) for child in children(daemon.pid)
                            if _is_python(child))
    what = ("local resources (serve_cmd sleeping)" if kind == "local"
            else "Kubernetes Deployments (busybox sleeping, one pod each)")
    print(f"{RESOURCES} idle {what}, devloop up; all ready {ready:.1f} s after the URL")
    print(figure("daemon RSS (VmRSS)", rss, "MiB", GOAL_RSS_MIB, 0)
          + f"; {rss_after:.0f} MiB after the idle window")
    print(figure(f"daemon idle CPU over {IDLE_WINDOW_SECONDS:.0f} s", cpu, "% of one core",
                 GOAL_IDLE_CPU_PERCENT, 2))
    print(f"  (the warm Tiltfile evaluator child, a separate process: {spare:.0f} MiB RSS)")


class _nothing:  # noqa: N801 - a null context manager yielding None
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None


def _all_ready(resources: list[dict[str, Any]]) -> bool:
    mine = [r for r in resources if r["spec"].get("type") in ("local", "k8s")]
    return len(mine) >= RESOURCES and all(r["status"].get("runtimeStatus") == "ok"
                                          for r in mine)


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "both"
    print("How: real `devloop up`, figures from /proc of the daemon process "
          "(bench/scale_idle.py docstring)")
    for kind in (["local", "k8s"] if which == "both" else [which]):
        measure(kind)


if __name__ == "__main__":
    main()
