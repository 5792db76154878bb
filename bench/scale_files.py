"""Benchmark: watching 100,000 files: idle CPU, memory, and the time to notice one edit.

How: a generated project whose one local resource (`serve_cmd` sleeping, `cmd` true) has
`deps=["src"]`, a tree of N files (default 100,000: 100 packages x 25 directories x 40
files, 2,601 directories, each one inotify watch). The real `devloop up --stream --port 0`
runs it. Figures:
* watch set-up: `FileWatcher.start` on the tree, in this process (median of 3), the time
  the daemon's loop spends starting to watch;
* RSS: the daemon's VmRSS once the resource is ready and 10 s have passed;
* idle CPU: the daemon's utime+stime over 20 s with no changes, % of one core;
* edit noticed: 10 edits of one file, 2 s apart; each sample is from the write to the line
  "Update #n (changed files: <file>)" in the daemon's streamed output (the file is read
  every 2 ms), which includes the debounce that folds an editor's burst into one change.

    python bench/scale_files.py [FILES]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scale_projects import figure, idle_cpu_percent, rss_mib, running_up, wait_for

from devloop.engine.watcher import DEFAULT_DEBOUNCE_SECONDS, FileWatcher, count_directories

GOAL_IDLE_CPU_PERCENT = 0.5
EDITS = 10
SETTLE_SECONDS = 10.0
IDLE_WINDOW_SECONDS = 20.0


def make_tree(src: Path, files: int) -> None:
    per_dir, dirs_per_package = 40, 25
    written = 0
    package = 0
    while written < files:
        for directory in range(dirs_per_package):
            folder = src / f"pkg{package}" / f"mod{directory}"
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(min(per_dir, files - written)):
                (folder / f"file{index}.py").write_text(f"VALUE = {index}\n")
                written += 1
            if written >= files:
                break
        package += 1


def watch_setup_ms(src: Path) -> float:
    async def once() -> float:
        watcher = FileWatcher(lambda changes: None)
        started = time.perf_counter()
        watcher.start([str(src)])
        elapsed = time.perf_counter() - started
        watcher.stop()
        return elapsed * 1000

    return statistics.median(asyncio.run(once()) for _ in range(3))


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    # On tmpfs when there is one: writing and deleting 100,000 files on disk takes minutes.
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(prefix="devloop-scale-files-", dir=base) as tmp:
        project = Path(tmp) / "project"
        src = project / "src"
        make_tree(src, files)
        (project / "Tiltfile").write_text(
            'local_resource("app", cmd="true", serve_cmd="sleep 86400", deps=["src"])\n')
        directories = count_directories([str(src)])
        setup = watch_setup_ms(src)
        log_path = Path(tmp) / "up.log"
        with running_up(project, log_path) as daemon:
            daemon.wait_url()
            wait_for(lambda: any(r["status"].get("runtimeStatus") == "ok"
                                 for r in daemon.resources()), 120, poll=0.1)
            time.sleep(SETTLE_SECONDS)
            rss = rss_mib(daemon.pid)
            cpu = idle_cpu_percent(daemon.pid, IDLE_WINDOW_SECONDS)
            target = src / "pkg0" / "mod0" / "file0.py"
            samples = []

            def noticed() -> int:
                return log_path.read_text(errors="replace").count(f"changed files: {target}")

            for edit in range(EDITS):
                seen = noticed()
                started = time.perf_counter()
                target.write_text(f"VALUE = {edit + 1000}\n")
                wait_for(lambda seen=seen: noticed() > seen, 30,  # type: ignore[misc]
                         poll=0.002)
                samples.append((time.perf_counter() - started) * 1000)
                time.sleep(2)
    print(f"{files:,} watched files in {directories:,} directories (one local resource's "
          "deps), devloop up")
    print(figure("watch set-up (FileWatcher.start, in process, median of 3)", setup, "ms",
                 None, 0))
    print(figure("daemon RSS (VmRSS) once ready", rss, "MiB", None, 0))
    print(figure(f"daemon idle CPU over {IDLE_WINDOW_SECONDS:.0f} s", cpu, "% of one core",
                 GOAL_IDLE_CPU_PERCENT, 2))
    print(figure(f"edit noticed (write -> 'Update #n' in the output), median of {EDITS}",
                 statistics.median(samples), "ms", None, 0)
          + f"; max {max(samples):.0f} ms (includes the "
          f"{DEFAULT_DEBOUNCE_SECONDS * 1000:.0f} ms debounce)")


if __name__ == "__main__":
    main()
