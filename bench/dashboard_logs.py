"""Benchmark: the web dashboard's Logs view with 1M kept log lines.

How: a child process plays the daemon: it fills a LogStore with N lines (default 1,000,000,
spread over 10 resources, ~75 characters each, one in 500 an ERROR line, with a byte budget
large enough to keep them all) and serves it with the real API server (`devloop.server`).
Headless Chromium (Debian's package, driven by Playwright) then opens the dashboard on the
"all resources" log view. Figures, read from the page's own clock (performance.now(), whose
origin is the navigation start) and from /proc of the daemon process:
* first paint: navigation start to the frame after the first log rows are in the DOM (the
  newest page of lines, fetched first);
* all loaded: navigation start until every kept line is in the browser (older pages follow);
* search: Enter in the search box to the first painted frame of matching rows, and to the end
  of the server-side search over all kept lines (`q=`);
* level filter: the client-side filter to errors over every loaded line, to the next frame;
* scrolling: mean and worst time between frames while jumping to 60 scroll positions spread
  over the whole log, one per frame;
* memory: the daemon's VmRSS before the browser connects and after, and its peak (VmHWM);
  the page's JS heap (performance.memory) after loading.

    python bench/dashboard_logs.py [LINES]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
RESOURCES = 10
SEARCH = "item 4242 "


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# -- the daemon side (child process)

async def serve(lines: int) -> None:
    from devloop.engine.logs import LogStore
    from devloop.engine.store import Store
    from devloop.server import start_server

    class NoActions:
        def names(self) -> list[str]:
            return [f"svc-{index}" for index in range(RESOURCES)]

        def trigger(self, resource: str) -> None: ...

        def set_enabled(self, resource: str, enabled: bool) -> None: ...

        def set_args(self, args: list[str]) -> None: ...

    store = Store()
    # Keep every line (no per-resource or session cap): the point is to show them all.
    logs = LogStore(budget_bytes=1 << 30, total_budget_bytes=1 << 31)
    for index in range(RESOURCES):
        name = f"svc-{index}"
        store.put("resource", name, spec={"type": "k8s", "labels": [], "links": []},
                  status={"updateStatus": "ok", "runtimeStatus": "ok", "enabled": True})
    for seq in range(lines):
        level = "ERROR" if seq % 500 == 0 else "INFO"
        logs.append(f"svc-{seq % RESOURCES}",
                    f"2025-01-01T00:00:00Z {level} GET /api/items/{seq % 9973} item {seq} "
                    f"served in {seq % 97}ms", source="runtime", prefix=f"pod-{seq % 3}")
    server = await start_server(store=store, logs=logs, actions=NoActions(),
                                host="127.0.0.1", port=0, write_file=False)
    print(json.dumps({"url": server.url}), flush=True)
    await asyncio.Event().wait()


# -- the measuring side

PAINTED = """async () => {
  const view = window.devloop.logView;
  while (!(view.timing && view.timing.firstPaint)) await new Promise(r => setTimeout(r, 5));
  return view.timing.firstPaint;
}"""
LOADED = """async () => {
  const view = window.devloop.logView;
  while (!(view.timing && view.timing.loaded && view.timing.firstPaint))
    await new Promise(r => setTimeout(r, 5));
  return view.timing;
}"""
LEVEL = """async () => {
  const start = performance.now();
  window.devloop.logView.show({ level: 2 });
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [performance.now() - start, window.devloop.logView.count()];
}"""
SCROLL = """async () => {
  const node = document.getElementById("log-scroll");
  const gaps = [];
  let last = performance.now();
  for (let step = 0; step < 60; step++) {
    node.scrollTop = (node.scrollHeight - node.clientHeight) * ((step * 37) % 60) / 59;
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }
  return [gaps.reduce((a, b) => a + b, 0) / gaps.length, Math.max(...gaps)];
}"""


async def measure(url: str, pid: int, lines: int) -> None:
    from playwright.async_api import async_playwright

    rss_before = status_kib(pid, "VmRSS")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(f"{url}/#/all")
        first_paint = await page.evaluate(PAINTED)
        timing = await page.evaluate(LOADED)
        shown = await page.evaluate("window.devloop.logView.count()")
        heap = await page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
        scroll_mean, scroll_worst = await page.evaluate(SCROLL)

        await page.fill("#log-search", SEARCH.strip())
        await page.press("#log-search", "Enter")
        await page.wait_for_function("window.devloop.logView.query.q !== ''")
        search = await page.evaluate(LOADED)
        found = await page.evaluate("window.devloop.logView.count()")
        await page.fill("#log-search", "")
        await page.press("#log-search", "Enter")
        await page.wait_for_function("window.devloop.logView.query.q === ''")
        await page.evaluate(LOADED)
        level_ms, errors = await page.evaluate(LEVEL)
        await browser.close()
    rss_after = status_kib(pid, "VmRSS")
    peak = status_kib(pid, "VmHWM")

    print(f"dashboard logs view, {lines:,} kept lines over {RESOURCES} resources "
          f"(all-resources view, headless Chromium {CHROMIUM})")
    print(f"  first paint (newest page):     {first_paint:8.0f} ms after navigation start")
    print(f"  all lines loaded ({shown:,}):  {timing['loaded']:8.0f} ms after navigation start")
    print(f"  search q={SEARCH.strip()!r} first paint: "
          f"{search['firstPaint'] - search['started']:8.0f} ms, all kept lines searched: "
          f"{search['loaded'] - search['started']:8.0f} ms ({found} matches)")
    print(f"  level filter (errors, client): {level_ms:8.0f} ms to the next frame "
          f"({errors:,} lines)")
    print(f"  scrolling, 60 jumps:           {scroll_mean:8.1f} ms mean, "
          f"{scroll_worst:.1f} ms worst between frames")
    print(f"  daemon RSS: {rss_before / 1024:.0f} MiB with the lines loaded, "
          f"{rss_after / 1024:.0f} MiB after serving, peak {peak / 1024:.0f} MiB")
    print(f"  page JS heap after loading: {heap / (1 << 20):.0f} MiB")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        asyncio.run(serve(int(sys.argv[2])))
        return
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    started = time.monotonic()
    daemon = subprocess.Popen([sys.executable, __file__, "--serve", str(lines)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert daemon.stdout is not None
        url = json.loads(daemon.stdout.readline())["url"]
        print(f"(daemon filled {lines:,} lines in {time.monotonic() - started:.1f} s)")
        asyncio.run(measure(url, daemon.pid, lines))
    finally:
        daemon.terminate()
        daemon.wait()


if __name__ == "__main__":
    main()
