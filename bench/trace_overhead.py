"""Benchmark: what an update's change-to-ready trace costs the daemon, in-process.

How: the engine's side of a live update's trace, as the daemon does it, on a real Store
and LogStore: the watcher's notice, `TraceBook.begin`, the marks a live update makes
(prepare, sync), `finish` (which publishes the trace into the build object and writes the
summary log line), then the first answer through a port-forward (published again and
logged). Timed over many updates with `time.perf_counter`; the figure is per update, to
set beside a live update's few hundred milliseconds (bench/live_update.py).

    python bench/trace_overhead.py [updates]
"""

from __future__ import annotations

import statistics
import sys
import time

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.engine.trace import TraceBook
from devloop.model import trace as tr


def one_update(book: TraceBook, store: Store, number: int) -> float:
    """Seconds the trace's calls took for one update (the engine's own build object is
    written untimed)."""
    path = "/project/api/app.py"
    now = time.time()
    store.put("build", f"api-{number}", spec={"resource": "api"},
              status={"startTime": now, "duration": 0.1, "error": ""})
    start = time.perf_counter()
    book.noticed("api", [tr.FileNotice(path, now - 0.03, now - 0.029, now - 0.003)])
    trace = book.begin("api", f"api-{number}", [path], now)
    tr.mark(tr.Phase.PREPARE)
    tr.mark(tr.Phase.SYNC, container="api-1/main")
    book.finish(trace, failed=False)
    book.tracer("api").answered(time.time())
    return time.perf_counter() - start


def main() -> None:
    updates = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    store, logs = Store(), LogStore()
    book = TraceBook(store, lambda name, text: logs.append(name, text, source="build"))
    samples: list[float] = []
    for number in range(1, updates + 1):
        samples.append(one_update(book, store, number))
    samples.sort()
    print(f"trace of one live update (notice, begin, 2 marks, finish + publish + summary "
          f"line, first answer + publish + line), {updates} updates:")
    print(f"  median {statistics.median(samples) * 1e6:.0f} us   "
          f"p99 {samples[int(len(samples) * 0.99)] * 1e6:.0f} us   "
          f"max {samples[-1] * 1e6:.0f} us")


if __name__ == "__main__":
    main()
