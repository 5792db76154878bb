"""Benchmark: `devloop up`'s memory and idle CPU, and the rebuild loop latency.

How: `devloop up` runs on the example in a fresh namespace until the api answers through
its port-forward. Then:
* rebuild loop: N edits of `web/app.py` (not under any live_update sync, so each edit is
  a full image rebuild + push + rollout); each sample is the time from the file write to
  the first response with the new title through http://127.0.0.1:18080, polled every 10 ms;
* idle: after the loop settles, the daemon's RSS (VmRSS of the devloop process) and its
  CPU use over a 20 s window of no changes (utime+stime from /proc/<pid>/stat).

    python bench/daemon_resources.py [N]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support import bench_env, get, percentile, running_up, wait_for

IDLE_WINDOW_SECONDS = 20.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    edits = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with (bench_env("bench-daemon") as env, tempfile.TemporaryDirectory() as tmp,
          running_up(env, Path(tmp) / "up.log", "--", "--no-worker") as process):
        startup = wait_for(lambda: '"v1"' in get("http://127.0.0.1:18081/"), 600)
        wait_for(lambda: "<h1>Shop</h1>" in get("http://127.0.0.1:18080/"), 300)
        print(f"devloop up to the api answering through its port-forward: {startup:.1f} s")
        web = env.project / "web" / "app.py"
        source = web.read_text()
        samples = []
        for index in range(edits):
            title = f"Shop {index}"
            web.write_text(source.replace('TITLE = "Shop"', f'TITLE = "{title}"'))
            samples.append(wait_for(
                lambda title=title: f"<h1>{title}</h1>" in get("http://127.0.0.1:18080/"),
                300))
            print(f"edit {index + 1}: save -> new response {samples[-1]:.2f} s")
        time.sleep(5)  # let the old pods finish terminating
        before = cpu_seconds(process.pid)
        time.sleep(IDLE_WINDOW_SECONDS)
        idle_cpu = (cpu_seconds(process.pid) - before) / IDLE_WINDOW_SECONDS * 100
        rss = rss_mib(process.pid)
    print(f"rebuild loop (full image rebuild, push, rollout, forward re-target), {edits} edits: "
          f"median {statistics.median(samples):.2f} s, p90 {percentile(samples, 0.9):.2f} s")
    print(f"daemon RSS after the loop: {rss:.0f} MiB; idle CPU over {IDLE_WINDOW_SECONDS:.0f} s: "
          f"{idle_cpu:.1f} % of one core")


if __name__ == "__main__":
    main()
