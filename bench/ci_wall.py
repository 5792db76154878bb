"""Benchmark: wall time of `devloop ci` on the bundled example with warm caches.

How: in a fresh namespace of the test cluster, one `devloop ci` warms the Docker layer
cache and the registry; then N runs of `devloop down` + `devloop ci` are timed (each `ci`
from process start to exit, so Python start-up, Tiltfile evaluation, three image builds
whose layers are cached, pushes of unchanged layers, apply, rollouts to Ready and the
local_resource all count). Prints each run and the median.

    python bench/ci_wall.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from support import bench_env


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with bench_env("bench-ci") as env:
        warm = subprocess.run(env.devloop("ci", "--timeout", "10m"), cwd=env.project,
                              env=env.env(), capture_output=True, text=True, check=False)
        if warm.returncode != 0:
            sys.exit(f"warm-up ci failed:\n{warm.stdout[-3000:]}\n{warm.stderr[-3000:]}")
        samples = []
        for index in range(runs):
            subprocess.run(env.devloop("down"), cwd=env.project, env=env.env(),
                           capture_output=True, check=True)
            start = time.perf_counter()
            result = subprocess.run(env.devloop("ci", "--timeout", "10m"), cwd=env.project,
                                    env=env.env(), capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - start
            if result.returncode != 0:
                sys.exit(f"ci run {index + 1} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            samples.append(elapsed)
            print(f"run {index + 1}: devloop ci {elapsed:.2f} s (after devloop down)")
        subprocess.run(env.devloop("down"), cwd=env.project, env=env.env(),
                       capture_output=True, check=False)
    print(f"devloop ci on examples/shop (3 images, 3 Deployments, 1 local_resource), warm "
          f"caches, {runs} runs: median {statistics.median(samples):.2f} s, "
          f"min {min(samples):.2f} s, max {max(samples):.2f} s")


if __name__ == "__main__":
    main()
