"""Benchmark: save -> new response, live update against a full image rebuild.

How: `devloop up -- --no-worker` on a private copy of examples/shop (own namespace of the
test cluster, free local ports). Once the api answers, each live-update sample rewrites
`VERSION` in api/app.py (a synced file) and polls the api through devloop's port-forward
until the new version answers; the clock starts just before the write and stops when the
response arrives, so it includes the file watcher's debounce, the engine, the sync (tar over
the exec API), the app's reload and the request through the port-forward. Then each
full-rebuild sample changes VERSION and api/Dockerfile together (the Dockerfile is a
`fall_back_on` file): image build, push, apply, rollout, readiness and the port-forward
moving to the new pod all count. Also printed: how long one request through the
port-forward takes (the resolution of the polling) and devloop's own sync time per live
update (from its "Live update: done in N ms" lines), to show where the time goes.

    python bench/live_update.py [live_edits] [rebuild_edits]
"""

from __future__ import annotations

import re
import socket
import statistics
import sys
import time
from pathlib import Path

from support import bench_env, get, percentile, running_up, wait_for

from devloop.engine.watcher import DEFAULT_DEBOUNCE_SECONDS

POLL_SECONDS = 0.005
SETTLE_SECONDS = 0.3  # between samples, so one edit's reload does not overlap the next


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _use_ports(project: Path) -> int:
    """Point the copy's forwards at free ports (other runs may hold the example's)."""
    api_port, web_port = _free_port(), _free_port()
    tiltfile = project / "Tiltfile"
    tiltfile.write_text(tiltfile.read_text().replace('"18081:8080"', f'"{api_port}:8080"')
                        .replace("port_forward(18080,", f"port_forward({web_port},"))
    return api_port


def _set_version(app: Path, version: str) -> None:
    app.write_text(re.sub(r'VERSION = "[^"]*"', f'VERSION = "{version}"', app.read_text()))


def _summary(samples: list[float]) -> str:
    return (f"median {statistics.median(samples) * 1000:7.0f} ms   "
            f"p90 {percentile(samples, 0.9) * 1000:7.0f} ms   "
            f"min {min(samples) * 1000:7.0f} ms   max {max(samples) * 1000:7.0f} ms")


def main() -> None:
    live_edits = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    rebuild_edits = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with bench_env("bench-lu") as env:
        port = _use_ports(env.project)
        url = f"http://127.0.0.1:{port}/"
        app = env.project / "api" / "app.py"
        dockerfile = env.project / "api" / "Dockerfile"
        log_path = env.project.parent / "up.log"
        with running_up(env, log_path, "--", "--no-worker"):
            wait_for(lambda: '"v1"' in get(url), 600, poll=0.5)
            requests = []
            for _ in range(20):
                start = time.perf_counter()
                get(url)
                requests.append(time.perf_counter() - start)

            live: list[float] = []
            for index in range(live_edits):
                version = f"live-{index}"
                start = time.perf_counter()
                _set_version(app, version)
                wait_for(lambda v=version: f'"{v}"' in get(url), 60, POLL_SECONDS)
                live.append(time.perf_counter() - start)
                print(f"live update {index + 1:2}: {live[-1] * 1000:6.0f} ms", flush=True)
                time.sleep(SETTLE_SECONDS)
            done = [int(ms) for ms in re.findall(r"Live update: done in (\d+) ms",
                                                  log_path.read_text())]

            rebuild: list[float] = []
            for index in range(rebuild_edits):
                version = f"rebuild-{index}"
                start = time.perf_counter()
                dockerfile.write_text(dockerfile.read_text() + f"# rebuild {index}\n")
                _set_version(app, version)
                wait_for(lambda v=version: f'"{v}"' in get(url), 600, 0.05)
                rebuild.append(time.perf_counter() - start)
                print(f"full rebuild {index + 1}: {rebuild[-1]:6.2f} s", flush=True)
                time.sleep(1.0)
            log = log_path.read_text()
    if log.count("Will not live update") < rebuild_edits:
        sys.exit("the rebuild samples did not all take the full-rebuild path")
    print()
    print("save -> new response through the port-forward, examples/shop api "
          "(python:3.11-slim, reload.py restarts app.py on a source change)")
    print(f"  live update  ({len(live):2} edits of api/app.py):             {_summary(live)}")
    print(f"  full rebuild ({len(rebuild):2} edits of app.py + api/Dockerfile): "
          f"{_summary(rebuild)}")
    print("where the live-update time goes:")
    print(f"  file watcher debounce: {DEFAULT_DEBOUNCE_SECONDS * 1000:.0f} ms (quiet period "
          "before a change set is sent)")
    if done:
        print(f"  devloop's live update (list pods, tar, exec into the container): median "
              f"{statistics.median(done)} ms, max {max(done)} ms over {len(done)} updates")
    print(f"  one request through the port-forward: median "
          f"{statistics.median(requests) * 1000:.0f} ms (polling resolution; polls every "
          f"{POLL_SECONDS * 1000:.0f} ms after that)")
    print("  the rest: the engine, reload.py's 20 ms poll, and the new app.py starting up")


if __name__ == "__main__":
    main()
