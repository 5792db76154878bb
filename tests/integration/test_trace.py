"""Change-to-ready traces against the real cluster: the spans of an update's trace add up to
the wall time a user waits from saving a file to the first new answer through the
port-forward, for a full rebuild and for a live update; the dashboard draws them.

The project serves a file with busybox's httpd, which reads it from disk on every request,
so the first answer after the new file is in place (a new pod, or a sync into the running
container) is the new one: devloop's trace and the user's clock measure the same thing.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, expect, sync_playwright

from tests.integration.projects_support import (
    REPO_ROOT,
    devloop,
    devloop_up,
    http_get,
    kubeconfig_for,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.integration

ARTIFACTS = REPO_ROOT / "test-artifacts" / "trace"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
# How often the test asks for the new answer: fine enough that the user's clock stops
# within a few milliseconds of devloop's.
POLL_SECONDS = 0.01
TOLERANCE = 0.10

DOCKERFILE = """FROM busybox
COPY index.html /www/index.html
CMD ["sh", "-c", "echo serving /www; exec httpd -f -v -p 8000 -h /www"]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tiltfile(full_port: int, live_port: int) -> str:
    return f"""
docker_build('trace-full', 'full')
docker_build('trace-live', 'live', live_update=[sync('live/index.html', '/www/index.html')])
k8s_yaml('k8s.yaml')
k8s_resource('full', port_forwards='{full_port}:8000')
k8s_resource('live', port_forwards='{live_port}:8000')
"""


def deployment(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                    "name": "main", "image": image, "ports": [{"containerPort": 8000}]}]}}}}


def api_json(port: int, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}",  # noqa: S310
                                timeout=5) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def serving(url: str, text: str) -> bool:
    try:
        return text in http_get(url)[1]
    except OSError:
        return False


def save_and_time(path: Path, text: str, url: str) -> float:
    """Write the file, ask until the new text answers; the seconds in between."""
    start = time.time()
    path.write_text(text)
    deadline = start + 120
    while time.time() < deadline:
        if serving(url, text):
            return time.time() - start
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"{url} never answered {text!r}")


def answered_trace(api_port: int, resource: str, after: float, *,
                   points: tuple[str, ...] = ()) -> dict[str, Any]:
    """The trace of the resource's update that began after `after`, once it has its answer
    (and the `points`: a log line may come through after the answer)."""
    def find() -> dict[str, Any] | None:
        for build in api_json(api_port, "build")["items"]:
            trace = build["status"].get("trace")
            if build["spec"]["resource"] == resource and trace and trace["origin"] >= after - 1 \
                    and trace["state"] == "answered" and set(points) <= {
                        point["name"] for point in trace["points"]}:
                return {"name": build["metadata"]["name"], **trace}
        return None

    return wait_for(find, 30, f"the answered trace of {resource}")


def check_adds_up(trace: dict[str, Any], wall: float, written: float) -> None:
    spans = trace["spans"]
    added = sum(span["duration"] for span in spans)
    assert abs(added - wall) <= TOLERANCE * wall, (
        f"spans add up to {added:.3f} s, the user waited {wall:.3f} s: {trace['summary']}; "
        f"spans {spans}")
    # The timeline starts when the file was saved, and its phases follow one another.
    assert abs(trace["origin"] - written) < 0.05
    for before, after in zip(spans, spans[1:], strict=False):
        assert after["start"] >= before["end"] - 0.002, (before, after)


def test_trace_spans_add_up_to_the_wait_from_save_to_the_first_new_answer(
        testenv, k8s_namespace, tmp_path):
    full_port, live_port, api_port = free_port(), free_port(), free_port()
    project = write_project(tmp_path / "p", tiltfile(full_port, live_port),
                            [deployment("full", "trace-full"), deployment("live", "trace-live")],
                            {"full/Dockerfile": DOCKERFILE, "full/index.html": "full v1\n",
                             "live/Dockerfile": DOCKERFILE, "live/index.html": "live v1\n"})
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    full_url, live_url = f"http://127.0.0.1:{full_port}/", f"http://127.0.0.1:{live_port}/"
    with devloop_up(project, kubeconfig, log_path, "--port", str(api_port)):
        wait_for(lambda: serving(full_url, "full v1") and serving(live_url, "live v1"), 300,
                 "both services answering")
        time.sleep(1.0)  # let the first updates' traces settle

        written = time.time()
        wall = save_and_time(project / "full" / "index.html", "full v2\n", full_url)
        full = answered_trace(api_port, "full", written, points=("saved", "first log line"))
        check_adds_up(full, wall, written)
        names = [span["name"] for span in full["spans"]]
        assert names == ["notice", "debounce", "queue", "prepare", "build", "push", "apply",
                         "rollout", "ready", "answer"], names
        assert any(step["parent"] == "build" and "COPY index.html" in step["name"]
                   for step in full["steps"])
        [first_log] = [p for p in full["points"] if p["name"] == "first log line"]
        assert first_log["attrs"]["pod"].startswith("full-")

        time.sleep(1.0)
        written = time.time()
        wall = save_and_time(project / "live" / "index.html", "live v2\n", live_url)
        live = answered_trace(api_port, "live", written)
        check_adds_up(live, wall, written)
        names = [span["name"] for span in live["spans"]]
        assert names[:4] == ["notice", "debounce", "queue", "prepare"], names
        assert "sync" in names and names[-1] == "answer", names
        assert "build" not in names

        log = log_path.read_text()
        assert "Save to ready in " in log and "First answer through a port-forward" in log

        # `devloop get build NAME -o yaml` shows the spans.
        shown = wait_for(lambda: _get_yaml(project, kubeconfig, api_port, full["name"]), 30,
                         "devloop get build -o yaml")
        assert "trace:" in shown and "name: rollout" in shown

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"http://127.0.0.1:{api_port}/#/r/full/facets")
                newest = page.locator("#facet-timeline .trace").first
                expect(newest).to_contain_text(full["summary"], timeout=30_000)
                expect(newest.locator(".trace-phase")).to_have_count(len(full["spans"]))
                expect(newest.locator(".trace-step").first).to_be_visible()
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                screenshot(page.locator("#facet-timeline"), ARTIFACTS / "full-rebuild-timeline.png")
                page.goto(f"http://127.0.0.1:{api_port}/#/r/live/facets")
                expect(page.locator("#facet-timeline .trace").first).to_contain_text(
                    live["summary"], timeout=30_000)
                screenshot(page.locator("#facet-timeline"), ARTIFACTS / "live-update-timeline.png")
            finally:
                browser.close()


def screenshot(locator: Locator, path: Path) -> None:
    """The Facets panel is drawn again whenever one of the resource's objects changes (a
    trace gains its first log line, a pod its status): a screenshot begun on the element
    just replaced is taken again of the new one."""
    for attempt in range(5):
        try:
            locator.screenshot(path=str(path))
            return
        except PlaywrightError as exc:
            if "not attached" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.2)


def _get_yaml(project: Path, kubeconfig: Path, api_port: int, name: str) -> str:
    result = devloop(["get", "build", name, "-o", "yaml", "--port", str(api_port)],
                     cwd=project, kubeconfig=kubeconfig, timeout=60)
    return result.stdout if result.returncode == 0 else ""
