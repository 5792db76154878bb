"""Benchmark: Tiltfile evaluation time for the bundled examples.

How: each Tiltfile is evaluated once to warm imports, then N more times in this process
(`evaluate()` end to end: read and rewrite every loaded file, run the starlark-go program,
assemble the Plan). Prints min / median / p90 wall time per evaluation.

    python bench/tiltfile_eval.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from devloop.tiltfile.evaluator import evaluate

ROOT = Path(__file__).resolve().parents[1]
TILTFILES = [ROOT / "examples" / "shop" / "Tiltfile", ROOT / "Tiltfile.example"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    print(f"Tiltfile evaluation, {runs} runs each after one warm-up, wall clock "
          f"(time.perf_counter), Python {sys.version.split()[0]}")
    for path in TILTFILES:
        evaluate(str(path))
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            plan = evaluate(str(path)).plan
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        p90 = samples[int(len(samples) * 0.9) - 1]
        print(f"{path.relative_to(ROOT)}: {len(plan.resources)} resources, "
              f"{len(plan.images)} images: min {samples[0]:.1f} ms, "
              f"median {statistics.median(samples):.1f} ms, p90 {p90:.1f} ms")


if __name__ == "__main__":
    main()
