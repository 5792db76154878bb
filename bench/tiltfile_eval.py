"""Benchmark: Tiltfile evaluation time for the bundled examples, in process and in a child.

How: each Tiltfile is evaluated once to warm imports, then N more times. "in process" is
`evaluator.evaluate()` end to end (read and rewrite every loaded file, run the starlark-go
program, assemble the Plan). "child" is what `devloop up` does on a reload:
`ChildEvaluator(keep_spare=True).evaluate()` (hand the request to the spare child, which
has its imports done, evaluate there, send the pickled Plan back, start the next spare);
between two child runs the bench waits until the new spare is idle, as a reload after an
edit finds it. "fresh child" is a one-shot command (`tiltfile-result`, `ci`): a new
process per evaluation, imports included. Prints min / median / p90 wall time.

    python bench/tiltfile_eval.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devloop.tiltfile.evaluator import Evaluation, evaluate
from devloop.tiltfile.isolated import ChildEvaluator, evaluate_in_child

ROOT = Path(__file__).resolve().parents[1]
TILTFILES = [ROOT / "examples" / "shop" / "Tiltfile", ROOT / "Tiltfile.example"]
SPARE_IDLE_WAIT = 2.0  # seconds: longer than the spare takes to import and warm up here


def _measure(runs: int, once: Callable[[], Evaluation], pause: float = 0.0
             ) -> tuple[list[float], Evaluation]:
    result = once()
    samples = []
    for _ in range(runs):
        if pause:
            time.sleep(pause)
        start = time.perf_counter()
        result = once()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return samples, result


def _line(label: str, samples: list[float]) -> str:
    p90 = samples[max(int(len(samples) * 0.9) - 1, 0)]
    return (f"  {label}: min {samples[0]:.1f} ms, median {statistics.median(samples):.1f} ms, "
            f"p90 {p90:.1f} ms")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(f"Tiltfile evaluation, {runs} runs each after one warm-up, wall clock "
          f"(time.perf_counter), Python {sys.version.split()[0]}")
    for path in TILTFILES:
        samples, result = _measure(runs, lambda p=path: evaluate(str(p)))
        plan = result.plan
        print(f"{path.relative_to(ROOT)}: {len(plan.resources)} resources, "
              f"{len(plan.images)} images")
        print(_line("in process", samples))
        child = ChildEvaluator(keep_spare=True)
        try:
            time.sleep(SPARE_IDLE_WAIT)
            samples, _ = _measure(runs, lambda p=path, c=child: c.evaluate(str(p)),
                                  pause=SPARE_IDLE_WAIT)
        finally:
            child.close()
        print(_line("child with a warm spare (devloop up reload)", samples))
        samples, _ = _measure(max(runs // 5, 3), lambda p=path: evaluate_in_child(str(p)))
        print(_line("fresh child (one-shot commands)", samples))


if __name__ == "__main__":
    main()
