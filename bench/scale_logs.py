"""Benchmark: 1,000,000 log lines over 20 resources with the default log budget.

How: a generated project of 20 local resources, each a `serve_cmd` printing N/20 lines
(default N = 1,000,000; about 80 characters each, like an access log, one in 500 an ERROR)
as fast as it can, then "DONE <name>", then sleeping. The real `devloop up --stream --port
0` runs it with its default log budgets (per resource and per session, devloop/engine/
logs.py). Figures:
* ingest: from the URL to the 20th "DONE" in the daemon's streamed output;
* RSS: the daemon's VmRSS once every line is in, and its peak (VmHWM);
* kept: how many lines the store keeps (the API's per-resource drop counts);
* search: `GET /api/v1/logs?q=...` over every resource, wall time of the request (median
  of 5) for a string no line has (every kept line is read) and for one that matches a few.

    python bench/scale_logs.py [LINES]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from scale_projects import Daemon, figure, rss_mib, running_up, status_kib, wait_for

RESOURCES = 20
GOAL_RSS_MIB = 150.0
GOAL_SEARCH_MS = 1000.0
GENERATOR = """\
import sys
name, count = sys.argv[1], int(sys.argv[2])
out = sys.stdout
for i in range(count):
    level = "ERROR" if i % 500 == 0 else "INFO"
    out.write(f"2025-01-01T00:00:00.{i % 1000:03d}Z {level} GET /api/items/{i % 9973} "
              f"{name} item {i} served in {i % 97}ms by worker-{i % 7}\\n")
out.write(f"DONE {name}\\n")
out.flush()
import time
time.sleep(86400)
"""


def search_ms(daemon: Daemon, query: str) -> tuple[float, int]:
    samples, found = [], 0
    for _ in range(5):
        started = time.perf_counter()
        answer = daemon.get("/api/v1/logs?" + urllib.parse.urlencode({"q": query,
                                                                       "limit": 1000}))
        samples.append((time.perf_counter() - started) * 1000)
        found = len(answer["lines"])
    return statistics.median(samples), found


def _done(log_path: Path) -> int:
    """How many generators said DONE in the daemon's output (read from its end)."""
    with log_path.open("rb") as handle:
        return handle.read().count(b"DONE svc-")


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    per = lines // RESOURCES
    with tempfile.TemporaryDirectory(prefix="devloop-scale-logs-") as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "gen.py").write_text(GENERATOR)
        (project / "Tiltfile").write_text("".join(
            f'local_resource("svc-{index}", serve_cmd="python3 gen.py svc-{index} {per}")\n'
            for index in range(RESOURCES)))
        log_path = Path(tmp) / "up.log"
        with running_up(project, log_path) as daemon:
            daemon.wait_url()
            url_at = time.perf_counter()
            wait_for(lambda: _done(log_path) >= RESOURCES, 1200, poll=0.5)
            ingest = time.perf_counter() - url_at
            time.sleep(2)
            rss, peak = rss_mib(daemon.pid), status_kib(daemon.pid, "VmHWM") / 1024
            answer = daemon.get("/api/v1/logs?limit=1")
            newest = answer["lines"][-1]["seq"] if answer["lines"] else 0
            dropped = sum(int(count) for name, count in answer["dropped"].items()
                          if name.startswith("svc-"))
            none_ms, _ = search_ms(daemon, "no line has this text")
            few_ms, few = search_ms(daemon, "svc-7 item 49999 ")
            errors_ms, errors = search_ms(daemon, "ERROR GET")
    kept = lines - dropped
    print(f"{lines:,} log lines over {RESOURCES} local resources (about 80 characters each), "
          "devloop up with the default log budgets")
    print(f"  ingest: {ingest:.1f} s from the URL to the last line (newest seq {newest:,})")
    print(f"  kept: {kept:,} lines ({dropped:,} oldest dropped by the budget)")
    print(figure("daemon RSS (VmRSS) with every line in", rss, "MiB", GOAL_RSS_MIB, 0)
          + f"; peak (VmHWM) {peak:.0f} MiB")
    print(figure("search over every kept line, no match (median of 5)", none_ms, "ms",
                 GOAL_SEARCH_MS, 0))
    print(figure(f"search, {few} match (median of 5)", few_ms, "ms", GOAL_SEARCH_MS, 0))
    print(figure(f"search 'ERROR GET', newest {errors} matches (median of 5)", errors_ms,
                 "ms", GOAL_SEARCH_MS, 0))


if __name__ == "__main__":
    main()
