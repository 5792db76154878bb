"""Benchmark: `devloop up` -> every port-forward answering, images cached, fresh deploy.

How: in a fresh namespace of the test cluster, on a private copy of examples/shop (all
three services, both forwards moved to free local ports), one `devloop up` warms the
Docker layer cache and the registry. Then each sample runs `devloop down` and times a new
`devloop up` from process start until both forwards answer with the app's own content
(the api's JSON through its forward, the web page, which the web renders from the api,
through its forward), each polled every 10 ms; then the `up` is interrupted (Ctrl-C) and
waited for. Python start-up, Tiltfile evaluation, three image builds whose layers are
cached, pushes of unchanged layers, apply, rollouts to Ready (the web and worker wait for
the api: resource_deps) and the forwards all count.

With `--compare SRC` (another checkout of devloop, e.g. `git worktree add`), each round
times that checkout's `up` and this one's, alternating which goes first, in the same
namespace, and prints both medians: the machine's load drifts, alternation spreads it.

    python bench/up_ready.py [N] [--compare SRC] [--this SRC]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from support import BenchEnv, bench_env, get, percentile, use_free_shop_ports, wait_for

POLL_SECONDS = 0.01
TIMEOUT_SECONDS = 600.0


def _api_answers(url: str) -> bool:
    return bool(json.loads(get(url)).get("items"))


def _web_answers(url: str) -> bool:
    page = get(url)
    return "<h1>" in page and "coffee" in page  # rendered from the api's items


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _time_up(env: BenchEnv, source: str, urls: tuple[str, str], log: Path) -> float:
    extra = {"PYTHONPATH": source} if source else {}
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(env.devloop("up", "--stream", "--port", "0"),
                                   cwd=env.project, env={**env.env(), **extra}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)

    def alive() -> bool:  # an `up` that ended (the cluster unreachable...) fails at once
        if process.poll() is not None:
            raise SystemExit(f"devloop up ended with {process.returncode} before both "
                             f"forwards answered:\n{log.read_text()[-3000:]}")
        return True

    try:
        api, web = urls
        wait_for(lambda: alive() and _api_answers(api), TIMEOUT_SECONDS, POLL_SECONDS)
        wait_for(lambda: alive() and _web_answers(web), TIMEOUT_SECONDS, POLL_SECONDS)
        return time.perf_counter() - start
    except TimeoutError:
        sys.exit(f"devloop up did not answer on {urls} in {TIMEOUT_SECONDS:.0f} s:\n"
                 f"{log.read_text()[-3000:]}")
    finally:
        _stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=int, default=5)
    parser.add_argument("--compare", metavar="SRC", default="",
                        help="another devloop checkout to time against this one")
    parser.add_argument("--this", metavar="SRC", default="",
                        help="the checkout to time (default: the installed devloop)")
    parser.add_argument("--keep-logs", metavar="DIR", default="",
                        help="copy each run's `devloop up` log there")
    args = parser.parse_args()
    variants = {"this": os.path.abspath(args.this) if args.this else ""}
    if args.compare:
        variants = {"compare": os.path.abspath(args.compare), **variants}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    with bench_env("bench-up") as env:
        urls = use_free_shop_ports(env.project)
        log = env.project.parent / "up.log"

        def down(source: str) -> None:
            extra = {"PYTHONPATH": source} if source else {}
            subprocess.run(env.devloop("down"), cwd=env.project, env={**env.env(), **extra},
                           capture_output=True, check=False)

        for source in variants.values():  # warm-up: caches, registry, each variant
            _time_up(env, source, urls, log)
            down(source)
        for index in range(args.runs):
            order = list(variants.items())
            if index % 2:
                order.reverse()
            for name, source in order:
                down(source)
                log = env.project.parent / f"up-{index + 1}-{name}.log"
                samples[name].append(_time_up(env, source, urls, log))
                if args.keep_logs:
                    Path(args.keep_logs).mkdir(parents=True, exist_ok=True)
                    (Path(args.keep_logs) / log.name).write_text(log.read_text())
                print(f"run {index + 1} {name}: devloop up -> both forwards answering "
                      f"{samples[name][-1]:.2f} s (after devloop down)", flush=True)
        down("")
    for name, values in samples.items():
        print(f"{name}: devloop up -> every port-forward answering on examples/shop (3 images, "
              f"3 Deployments, 1 local_resource), warm caches, fresh deploy, {args.runs} runs: "
              f"median {statistics.median(values):.2f} s, p90 {percentile(values, 0.9):.2f} s, "
              f"min {min(values):.2f} s, max {max(values):.2f} s")


if __name__ == "__main__":
    main()
