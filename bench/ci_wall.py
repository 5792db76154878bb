"""Benchmark: wall time of `devloop ci` on the bundled example with warm caches.

How: in a fresh namespace of the test cluster, one `devloop ci` warms the Docker layer
cache and the registry; then N runs of `devloop down` + `devloop ci` are timed (each `ci`
from process start to exit, so Python start-up, Tiltfile evaluation, three image builds
whose layers are cached, pushes of unchanged layers, apply, rollouts to Ready, the
local_resource and the wait until success can be trusted all count). Prints each run and
the median.

With `--compare SRC` (another checkout of devloop, e.g. `git worktree add`), each round
times that checkout's `ci` and this one's, alternating which goes first, in the same
namespace, and prints both medians: the machine's load drifts, alternation spreads it.

    python bench/ci_wall.py [N] [--compare SRC] [--this SRC]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from support import bench_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=int, default=3)
    parser.add_argument("--compare", metavar="SRC", default="",
                        help="another devloop checkout to time against this one")
    parser.add_argument("--this", metavar="SRC", default="",
                        help="the checkout to time (default: the installed devloop)")
    args = parser.parse_args()
    this = os.path.abspath(args.this) if args.this else ""
    variants = {"this": this}
    if args.compare:
        variants = {"compare": os.path.abspath(args.compare), "this": this}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with bench_env("bench-ci") as env:

        def run(source: str, *command: str) -> tuple[float, subprocess.CompletedProcess[str]]:
            extra = {"PYTHONPATH": source} if source else {}
            start = time.perf_counter()
            result = subprocess.run(env.devloop(*command), cwd=env.project,
                                    env={**env.env(), **extra}, capture_output=True,
                                    text=True, check=False)
            return time.perf_counter() - start, result

        for name, source in variants.items():  # warm-up: caches, registry, each variant
            _, warm = run(source, "ci", "--timeout", "10m")
            if warm.returncode != 0:
                sys.exit(f"warm-up ci ({name}) failed:\n{warm.stdout[-3000:]}\n"
                         f"{warm.stderr[-3000:]}")
        for index in range(args.runs):
            order = list(variants.items())
            if index % 2:
                order.reverse()
            for name, source in order:
                run(source, "down")
                elapsed, result = run(source, "ci", "--timeout", "10m")
                if result.returncode != 0:
                    sys.exit(f"ci run {index + 1} ({name}) failed:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
                samples[name].append(elapsed)
                print(f"run {index + 1} {name}: devloop ci {elapsed:.2f} s (after devloop down)",
                      flush=True)
        run("", "down")
    for name, values in samples.items():
        print(f"{name}: devloop ci on examples/shop (3 images, 3 Deployments, 1 "
              f"local_resource), warm caches, {args.runs} runs: median "
              f"{statistics.median(values):.2f} s, min {min(values):.2f} s, "
              f"max {max(values):.2f} s")


if __name__ == "__main__":
    main()
