"""Benchmark: save -> new response on the Go and Node.js example (examples/hello).

The figures Tilt publishes for its Go and Node.js example projects are "time from saving
a file to the new code answering". Measured the same way here: `devloop up` on a private
copy of examples/hello (own namespace, free local ports); each sample rewrites the version
string of one service and polls that service through devloop's port-forward until the new
version answers. The clock starts just before the write.

- hello-go: a full rebuild (BuildKit, Go build cache in a cache mount), push, rollout,
  readiness and the forward moving to the new pod;
- hello-node: a live update (files synced into the running container, `node --watch`
  restarts the server).

    python bench/hello_example.py [samples]
"""

from __future__ import annotations

import json
import re
import socket
import statistics
import sys
import time
from pathlib import Path

import support
from support import bench_env, get, percentile, running_up, wait_for

SETTLE_SECONDS = 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _version(url: str) -> str:
    return str(json.loads(get(url))["version"])


def _edit(path: Path, pattern: str, new: str) -> None:
    path.write_text(re.sub(pattern, new, path.read_text()))


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    support.EXAMPLE = support.ROOT / "examples" / "hello"
    with bench_env("bench-hello") as env:
        go_port, node_port = _free_port(), _free_port()
        tiltfile = env.project / "Tiltfile"
        tiltfile.write_text(tiltfile.read_text().replace('"18090:8080"', f'"{go_port}:8080"')
                            .replace('"18091:3000"', f'"{node_port}:3000"'))
        go_url, node_url = f"http://127.0.0.1:{go_port}/", f"http://127.0.0.1:{node_port}/"
        log_path = env.project.parent / "up.log"
        with running_up(env, log_path):
            start = time.perf_counter()
            wait_for(lambda: _version(node_url) == "v1", 900, poll=0.2)
            print(f"first up (both images built, deployed, node Ready): "
                  f"{time.perf_counter() - start:.1f}s")
            rows = {}
            for name, path, pattern, template, url in (
                ("hello-go (rebuild)", env.project / "go" / "main.go",
                 r'const Version = "[^"]*"', 'const Version = "{v}"', go_url),
                ("hello-node (live update)", env.project / "node" / "server.js",
                 r'const VERSION = "[^"]*"', 'const VERSION = "{v}"', node_url),
            ):
                times = []
                for i in range(samples):
                    version = f"b{i}"
                    began = time.perf_counter()
                    _edit(path, pattern, template.format(v=version))
                    wait_for(lambda u=url, v=version: _version(u) == v, 600, poll=0.02)
                    times.append(time.perf_counter() - began)
                    time.sleep(SETTLE_SECONDS)
                rows[name] = times
        print(f"save -> new response, {samples} samples (seconds)")
        for name, times in rows.items():
            print(f"  {name:<26} median {statistics.median(times):6.2f}  "
                  f"p90 {percentile(times, 0.9):6.2f}  min {min(times):6.2f}")


if __name__ == "__main__":
    main()
