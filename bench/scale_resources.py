"""Benchmark: a project of 300 resources: start-up, the dashboard, enable/disable.

How: a generated project (bench/scale_projects.py) of 300 resources: D cheap Kubernetes
Deployments (default 30: busybox sleeping, no image build, in a namespace of their own on
the test environment; 30 is what this 2-core machine runs beside everything else without
the kubelet falling behind) and 300 - D local resources (a `serve_cmd` that sleeps), over
10 labels, under the real `devloop up --stream --port 0`. Figures:
* evaluation: `evaluate()` of the generated Tiltfile in this process (median of 5);
* evaluation + first publish: from starting the `devloop up` process to the API listing
  all 300 resources (Python start-up, imports, the Tiltfile evaluated in a child process,
  the cluster's registry discovered, the API server started): polled every 5 ms;
* all ready: from starting the process to every resource's runtime being ok;
* dashboard (headless Chromium, Debian's, driven by Playwright, on the "All resources" page
  with every resource ready), read from the page's clock (performance.now()):
  first paint: navigation start to the frame after all 300 rows are in the sidebar, median
  over 9 page loads, each in a fresh browser context (no cache);
  log filter: Enter in the log search box to the frame after the matching rows show;
  select: a click on one resource in the sidebar to the frame after its own logs show;
  disable / enable: a click on one resource's enable box to the frame after its row says
  "disabled" (and back), median of 5 each; the daemon's round trip and the re-render of
  the sidebar are inside it;
* the daemon's VmRSS and idle CPU (20 s) with all 300 running.

    python bench/scale_resources.py [DEPLOYMENTS]     (0: local resources only, no cluster)
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scale_projects import (
    Daemon,
    cluster_env,
    figure,
    idle_cpu_percent,
    rss_mib,
    running_up,
    wait_for,
    write_project,
)

from devloop.tiltfile.evaluator import evaluate

RESOURCES = 300
GOAL_START_SECONDS = 1.0
GOAL_UI_MS = 200.0
TOGGLES = 5
PAINT_LOADS = 9
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# Installed before the page loads: the moment the sidebar first holds `count` rows (a
# mutation observer, called as soon as the script that added them yields), then the frame
# after the one that paints them. Read from the page's clock, so the time Playwright takes
# to notice it is not counted.
FIRST_PAINT_WATCH = """(count) => {
  window.__rowsPainted = new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (document.querySelectorAll("li.resource").length < count) return;
      observer.disconnect();
      requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now())));
    });
    observer.observe(document, { childList: true, subtree: true });
  });
}"""
FIRST_PAINT = "() => window.__rowsPainted"
# Click one resource's enable box; resolve at the frame after its row shows `want`.
TOGGLE = """async ([name, want]) => {
  const row = () => document.querySelector(`li.resource[data-name="${name}"]`);
  const start = performance.now();
  row().querySelector("input.enable").click();
  while (!row() || (row().dataset.status === "disabled") !== (want === "disabled"))
    await new Promise(r => setTimeout(r, 1));
  await new Promise(r => requestAnimationFrame(r));
  return performance.now() - start;
}"""
LOG_FILTER = """async (query) => {
  const view = window.devloop.logView;
  const search = document.getElementById("log-search");
  search.value = query;
  const start = performance.now();
  search.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  while (!(view.timing && view.timing.firstPaint && view.timing.started >= start))
    await new Promise(r => setTimeout(r, 1));
  return [view.timing.firstPaint - start, view.count()];
}"""
# Click a resource in the sidebar: its own page, its logs only, painted.
SELECT = """async (name) => {
  const view = window.devloop.logView;
  const start = performance.now();
  document.querySelector(`li.resource[data-name="${name}"] a.resource-name`).click();
  while (!(view.timing && view.timing.firstPaint && view.timing.started >= start
           && document.querySelector(`li.resource.selected[data-name="${name}"]`)))
    await new Promise(r => setTimeout(r, 1));
  return [view.timing.firstPaint - start, view.count()];
}"""


def evaluation_ms(tiltfile: Path) -> float:
    evaluate(str(tiltfile))  # warm
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        evaluate(str(tiltfile))
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def dashboard(url: str, toggled: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        paints = []
        for _ in range(PAINT_LOADS):
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            fresh = await context.new_page()
            await fresh.add_init_script(f"({FIRST_PAINT_WATCH})({RESOURCES})")
            await fresh.goto(f"{url}/#/all")
            paints.append(await fresh.evaluate(FIRST_PAINT))
            await context.close()
        first_paint = statistics.median(paints)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.add_init_script(f"({FIRST_PAINT_WATCH})({RESOURCES})")
        await page.goto(f"{url}/#/all")
        await page.evaluate(FIRST_PAINT)
        await page.wait_for_function("window.devloop && window.devloop.logView.timing "
                                     "&& window.devloop.logView.timing.firstPaint")
        filter_ms, matches = await asyncio.wait_for(
            page.evaluate(LOG_FILTER, "serve_cmd"), 60)
        await page.evaluate(LOG_FILTER, "")
        select_ms, selected = await asyncio.wait_for(page.evaluate(SELECT, toggled), 60)
        await page.goto(f"{url}/#/all")
        await page.evaluate(FIRST_PAINT)
        disable, enable = [], []
        for _ in range(TOGGLES):
            disable.append(await asyncio.wait_for(
                page.evaluate(TOGGLE, [toggled, "disabled"]), 60))
            await asyncio.sleep(0.3)
            enable.append(await asyncio.wait_for(
                page.evaluate(TOGGLE, [toggled, "enabled"]), 60))
            await asyncio.sleep(0.3)
        await browser.close()
    return {"first_paint": first_paint, "paint_range": (min(paints), max(paints)),
            "filter": filter_ms, "matches": matches,
            "select": select_ms, "selected": selected,
            "disable": statistics.median(disable), "enable": statistics.median(enable)}


def resources_listed(daemon: Daemon) -> int:
    return sum(1 for r in daemon.resources() if r["spec"].get("type") in ("local", "k8s"))


def all_ready(daemon: Daemon) -> bool:
    mine = [r for r in daemon.resources() if r["spec"].get("type") in ("local", "k8s")]
    return len(mine) >= RESOURCES and all(r["status"].get("runtimeStatus") == "ok"
                                          for r in mine)


def main() -> None:
    deployments = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(
            prefix="devloop-scale-resources-")))
        env: dict[str, str] = {}
        if deployments:
            bench = stack.enter_context(cluster_env("bench-scale"))
            env["KUBECONFIG"] = str(bench.kubeconfig)
        project = write_project(tmp / "project", local=RESOURCES - deployments,
                                deployments=deployments)
        evaluation = evaluation_ms(project / "Tiltfile")
        daemon = stack.enter_context(running_up(project, tmp / "up.log", env=env))
        daemon.wait_url(timeout=120)
        wait_for(lambda: resources_listed(daemon) >= RESOURCES, 120, poll=0.005)
        published = time.perf_counter() - daemon.started
        wait_for(lambda: all_ready(daemon), 900, poll=0.2)
        ready = time.perf_counter() - daemon.started
        time.sleep(5)
        rss = rss_mib(daemon.pid)
        cpu = idle_cpu_percent(daemon.pid, 20)
        toggled = "deploy-0" if deployments else "local-0"
        ui = asyncio.run(dashboard(daemon.url, toggled))
    print(f"{RESOURCES} resources: {deployments} Kubernetes Deployments, "
          f"{RESOURCES - deployments} local serve_cmds, devloop up")
    print(figure("Tiltfile evaluation, in process (median of 5)", evaluation, "ms", None, 0))
    print(figure("evaluation + first publish (process start -> API lists all)", published,
                 "s", GOAL_START_SECONDS, 2))
    print(figure("all resources ready (process start -> every runtime ok)", ready, "s",
                 None, 1))
    low, high = ui["paint_range"]
    print(figure(f"dashboard first paint (navigation -> all rows painted), median of "
                 f"{PAINT_LOADS} loads ({low:.0f}-{high:.0f} ms)",
                 ui["first_paint"], "ms", GOAL_UI_MS, 0))
    print(figure(f"log filter, search 'serve_cmd' over all ({ui['matches']} rows)",
                 ui["filter"], "ms", GOAL_UI_MS, 0))
    print(figure(f"select one resource in the sidebar -> its logs ({ui['selected']} rows)",
                 ui["select"], "ms", GOAL_UI_MS, 0))
    print(figure(f"disable one resource -> its row updated (median of {TOGGLES})",
                 ui["disable"], "ms", GOAL_UI_MS, 0))
    print(figure(f"enable it again -> row updated (median of {TOGGLES})", ui["enable"], "ms",
                 GOAL_UI_MS, 0))
    print(figure("daemon RSS (VmRSS) with all running", rss, "MiB", None, 0))
    print(figure("daemon idle CPU over 20 s", cpu, "% of one core", None, 2))


if __name__ == "__main__":
    main()
