"""Benchmark: the two edit loops of the example, alternating two checkouts of devloop.

- rebuild: edit web/app.py (no live update for the web) -> the new page through the web's
  port-forward: file watch, image build, push, apply, rollout, readiness, the forward moving
  to the new pod;
- live update: edit api/app.py (synced into the running container, reload.py restarts the
  app) -> the new response through the api's port-forward.

How: on a private copy of examples/shop in a fresh namespace of the test cluster (all three
services, forwards on free local ports), each round runs `devloop up` of each checkout in
turn (the order alternates between rounds, so the machine's drifting load is spread over
both), waits until the web page answers, lets it settle, then times R rebuild edits and L
live-update edits. Each sample's clock starts just before the file is written and stops
when a response through the forward carries the new text (polled every 5 ms). Medians over
all rounds. Without `--compare`, only the installed (or `--this`) checkout is timed.

    python bench/edit_loops.py [--rounds N] [--rebuilds R] [--live L]
                               [--compare SRC] [--this SRC]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import statistics
import time
from pathlib import Path

from support import BenchEnv, bench_env, get, percentile, running_up, use_free_shop_ports, wait_for

POLL_SECONDS = 0.005
SETTLE_SECONDS = 3.0  # after up, and after each rebuild (old pods terminating)
LIVE_SETTLE_SECONDS = 0.3


def _answers(url: str, text: str) -> bool:
    return text in get(url)


def _replace(path: Path, pattern: str, new: str) -> None:
    path.write_text(re.sub(pattern, new, path.read_text()))


def _round(env: BenchEnv, name: str, urls: tuple[str, str], rebuilds: int, live: int,
           samples: dict[str, dict[str, list[float]]], tag: str, keep: str) -> None:
    api_url, web_url = urls
    web, api = env.project / "web" / "app.py", env.project / "api" / "app.py"
    log = env.project.parent / f"up-{name}.log"
    with running_up(env, log):
        wait_for(lambda: "<h1>" in get(web_url) and "coffee" in get(web_url), 600, 0.2)
        time.sleep(SETTLE_SECONDS)
        for index in range(rebuilds):
            title = f"Shop {tag}{index}"
            start = time.perf_counter()
            _replace(web, r'TITLE = "[^"]*"', f'TITLE = "{title}"')
            wait_for(functools.partial(_answers, web_url, f"<h1>{title}</h1>"), 300,
                     POLL_SECONDS)
            samples[name]["rebuild"].append(time.perf_counter() - start)
            print(f"{name}: rebuild {samples[name]['rebuild'][-1]:.2f} s", flush=True)
            time.sleep(SETTLE_SECONDS)
        for index in range(live):
            version = f"live-{tag}{index}"
            start = time.perf_counter()
            _replace(api, r'VERSION = "[^"]*"', f'VERSION = "{version}"')
            wait_for(functools.partial(_answers, api_url, f'"{version}"'), 60, POLL_SECONDS)
            samples[name]["live"].append(time.perf_counter() - start)
            print(f"{name}: live update {samples[name]['live'][-1] * 1000:.0f} ms", flush=True)
            time.sleep(LIVE_SETTLE_SECONDS)
        text = log.read_text()
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        (Path(keep) / f"up-{tag}.log").write_text(text)
    lines = [line for line in text.splitlines() if "Live update: done in" in line]
    if live and len(lines) < live:
        raise SystemExit(f"{name}: only {len(lines)} of {live} api edits were live updates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rebuilds", type=int, default=4)
    parser.add_argument("--live", type=int, default=8)
    parser.add_argument("--compare", metavar="SRC", default="")
    parser.add_argument("--this", metavar="SRC", default="")
    parser.add_argument("--keep-logs", metavar="DIR", default="",
                        help="copy each round's `devloop up` log there")
    args = parser.parse_args()
    variants = {"this": os.path.abspath(args.this) if args.this else ""}
    if args.compare:
        variants = {"compare": os.path.abspath(args.compare), **variants}
    samples: dict[str, dict[str, list[float]]] = {
        name: {"rebuild": [], "live": []} for name in variants}
    with bench_env("bench-edit") as env:
        urls = use_free_shop_ports(env.project)
        for index in range(args.rounds):
            order = list(variants.items())
            if index % 2:
                order.reverse()
            for name, source in order:
                saved = os.environ.get("PYTHONPATH")
                os.environ["PYTHONPATH"] = source  # running_up passes os.environ on
                if not source:
                    del os.environ["PYTHONPATH"]
                try:
                    _round(env, name, urls, args.rebuilds, args.live, samples,
                           f"{index}{name[0]}", args.keep_logs)
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
    for name, loops in samples.items():
        for loop, values in loops.items():
            if values:
                unit, scale = ("ms", 1000) if loop == "live" else ("s", 1)
                print(f"{name}: {loop} ({len(values)} edits over {args.rounds} rounds): "
                      f"median {statistics.median(values) * scale:.2f} {unit}, "
                      f"p90 {percentile(values, 0.9) * scale:.2f} {unit}, "
                      f"min {min(values) * scale:.2f} {unit}")


if __name__ == "__main__":
    main()
