"""The web dashboard in real headless Chromium, against the daemon's API over a real store.

Chromium is Debian's package, driven by Playwright with its `executable_path` (no browser
download). Screenshots of each tab go to test-artifacts/dashboard/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect
from playwright.sync_api import expect as sync_expect
from playwright.sync_api import sync_playwright

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.server import start_server
from tests.integration.test_engine_ci import (
    EXAMPLE,
    _wait_for,
    devloop_up,
    namespaced_kubeconfig,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
APPLIED_YAML = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"


@dataclass
class RecordingActions:
    """The engine side of the Actions API: records what the dashboard asked for."""

    store: Store
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [obj.name for obj in self.store.list("resource")]

    def _known(self, resource: str) -> None:
        if resource not in self.names():
            raise KeyError(resource)

    def trigger(self, resource: str) -> None:
        self._known(resource)
        self.calls.append(("trigger", {"resource": resource}))

    def set_enabled(self, resource: str, enabled: bool) -> None:
        self._known(resource)
        self.calls.append(("enable" if enabled else "disable", {"resource": resource}))

    def set_args(self, args: list[str]) -> None:
        self.calls.append(("args", {"args": args}))


def fill_store(store: Store, logs: LogStore) -> None:
    """A small shop: two ready k8s resources, one crashing, one local resource."""
    now = time.time()
    resources = {
        "api": ("k8s", ["backend"], "ok", "ok", ["http://127.0.0.1:18081/"]),
        "worker": ("k8s", ["backend"], "ok", "error", []),
        "web": ("k8s", ["frontend"], "ok", "ok", ["http://127.0.0.1:18080/"]),
        "check": ("local", ["checks"], "ok", "not_applicable", []),
    }
    for name, (kind, labels, update, runtime, links) in resources.items():
        store.put("build", f"{name}-1", spec={"resource": name, "cause": "initial update",
                                              "files": []},
                  status={"startTime": now - 30, "duration": 2.5, "error": ""})
        store.put("resource", name, spec={
            "type": kind, "labels": labels, "resourceDeps": [], "triggerMode": "auto",
            "links": links}, status={
            "updateStatus": update, "runtimeStatus": runtime,
            "runtimeReason": "CrashLoopBackOff" if runtime == "error" else "ready",
            "pendingChanges": [], "error": "", "builds": 1, "enabled": True, "waiting": "",
            "details": {"appliedYaml": APPLIED_YAML if name == "api" else "", "pods": []}})
    store.put("build", "api-2", spec={"resource": "api", "cause": "changed files: api/app.py",
                                      "files": ["api/app.py"]},
              status={"startTime": now - 10, "duration": 1.25, "error": ""})
    store.put("pod", "api-7d9f-x2k", spec={"resource": "api"}, status={
        "phase": "Running", "ready": True, "restarts": 1, "problem": "",
        "lastTermination": "Error (exit 1)", "containers": ["api"], "created": now - 60})
    store.put("alert", "worker-runtime-0", spec={"resource": "worker"},
              status={"message": "pod worker-5c4-abc: CrashLoopBackOff"})
    store.put("session", "tiltfile", status={"error": ""})
    logs.append("api", "Update #2 (changed files: api/app.py)", source="build")
    logs.append("api", "api v1 listening on :8080", source="runtime", prefix="api-7d9f-x2k")
    logs.append("worker", "about to crash: config missing", source="runtime",
                prefix="worker-5c4-abc")
    logs.append("check", "sources compile", source="local")


@pytest.fixture
async def daemon() -> AsyncIterator[tuple[str, Store, LogStore, RecordingActions, str]]:
    store, logs = Store(), LogStore()
    actions = RecordingActions(store)
    fill_store(store, logs)
    server = await start_server(store=store, logs=logs, actions=actions, host="127.0.0.1",
                                port=0, write_file=False)
    try:
        yield server.url, store, logs, actions, server.token
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        assert errors == [], f"the page raised: {errors}"


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


async def screenshot(page: Page, name: str) -> None:
    await page.screenshot(path=str(_artifact(name)))


async def test_resource_list_shows_every_resource_grouped_by_label(daemon, page):
    url, *_ = daemon
    await page.goto(url)
    for name in ("api", "worker", "web", "check"):
        await expect(page.locator(f'li.resource[data-name="{name}"]')).to_be_visible()
    backend = page.locator('section.group[data-label="backend"]')
    await expect(backend.locator("li.resource")).to_have_count(2)
    await expect(page.locator('li[data-name="api"] .badge')).to_have_text("ready")
    await expect(page.locator('li[data-name="worker"] .badge')).to_have_text("error")
    await expect(page.locator('li[data-name="api"] .duration')).to_have_text("1.3s")
    await expect(page.locator('li[data-name="api"] .links a')).to_have_text("127.0.0.1:18081/")
    await screenshot(page, "resource-list")


async def test_status_changes_arrive_over_the_stream(daemon, page):
    url, store, *_ = daemon
    await page.goto(url)
    await expect(page.locator('li[data-name="web"] .badge')).to_have_text("ready")
    store.update_status("resource", "web", updateStatus="in_progress")
    await expect(page.locator('li[data-name="web"] .badge')).to_have_text("building")
    store.update_status("resource", "web", updateStatus="ok",
                        pendingChanges=["web/app.py", "web/index.html"])
    await expect(page.locator('li[data-name="web"] .pending-changes')).to_have_text(
        "2 pending changes")
    store.update_status("resource", "web", enabled=False)
    await expect(page.locator('li[data-name="web"] .badge')).to_have_text("disabled")
    store.put("session", "tiltfile", status={"error": "Tiltfile:3:1: syntax error"})
    await expect(page.locator("#tiltfile-error")).to_have_text(
        "Tiltfile: Tiltfile:3:1: syntax error")
    store.put("session", "tiltfile", status={"error": ""})
    await expect(page.locator("#tiltfile-error")).to_be_hidden()


async def test_markup_in_a_resource_shows_as_text(daemon, page):
    """The resource list is written as HTML: every value from the store is escaped."""
    url, store, _, actions, _ = daemon
    markup = '<img src=x onerror="window.injected=1">&amp;"\''
    store.put("resource", "odd", spec={
        "type": "local", "labels": [markup], "resourceDeps": [], "triggerMode": "auto",
        "links": []}, status={
        "updateStatus": "pending", "runtimeStatus": "pending", "runtimeReason": markup,
        "pendingChanges": [markup], "error": "", "builds": 0, "enabled": False,
        "waiting": markup, "details": {}})
    await page.goto(url)
    row = page.locator('li.resource[data-name="odd"]')
    await expect(row.locator(".waiting")).to_have_text(markup)
    await expect(page.locator("section.group h3").filter(has_text="onerror")).to_have_count(1)
    assert await row.locator(".badge").get_attribute("title") == markup
    assert await row.locator(".pending-changes").get_attribute("title") == markup
    assert not await row.locator("input.enable").is_checked()
    assert await page.locator("#resource-groups img").count() == 0
    assert await page.evaluate("window.injected") is None
    # The controls, handled on the list, act for their own row.
    await row.locator("button.trigger").click()
    await row.locator("input.enable").check()
    for _ in range(100):  # each POST is answered after its click returns
        if len(actions.calls) == 2:
            break
        await asyncio.sleep(0.05)
    assert actions.calls == [("trigger", {"resource": "odd"}), ("enable", {"resource": "odd"})]


async def test_logs_tab_shows_kept_and_live_lines(daemon, page):
    url, _, logs, *_ = daemon
    await page.goto(f"{url}/#/r/api/logs")
    rows = page.locator("#log-rows .log-row:not([hidden])")
    await expect(rows.filter(has_text="api v1 listening on :8080")).to_have_count(1)
    await expect(rows.filter(has_text="about to crash")).to_have_count(0)  # other resource
    logs.append("api", "GET / 200 in 3ms", source="runtime", prefix="api-7d9f-x2k")
    await expect(rows.filter(has_text="GET / 200 in 3ms")).to_have_count(1)
    await screenshot(page, "logs")


async def test_log_search_and_source_filter(daemon, page):
    url, _, logs, *_ = daemon
    for index in range(500):
        logs.append("api", f"request {index} served", source="runtime")
    await page.goto(f"{url}/#/r/api/logs")
    scroll = page.locator("#log-scroll")
    await expect(scroll).to_have_attribute("data-lines", "502")
    await page.fill("#log-search", "request 42")
    await page.press("#log-search", "Enter")
    # "request 42" and "request 420".."request 429": searched on the server.
    await expect(scroll).to_have_attribute("data-lines", "11")
    logs.append("api", "request 42x arrived later", source="runtime")  # filtered here
    logs.append("api", "unrelated", source="runtime")
    await expect(scroll).to_have_attribute("data-lines", "12")
    await page.fill("#log-search", "")
    await page.press("#log-search", "Enter")
    await page.select_option("#log-source", "build")
    await expect(scroll).to_have_attribute("data-lines", "1")
    await expect(page.locator("#log-rows .log-row:not([hidden])")).to_have_text(
        ["Update #2 (changed files: api/app.py)"])


async def test_logs_newest_page_first_then_older_pages_in_front(daemon, page):
    url, _, logs, *_ = daemon
    for index in range(12_000):
        logs.append("api", f"line {index:05d}", source="runtime")
    await page.goto(f"{url}/#/r/api/logs")
    scroll = page.locator("#log-scroll")
    await expect(scroll).to_have_attribute("data-state", "ready")
    await expect(scroll).to_have_attribute("data-lines", "12002")
    rows = page.locator("#log-rows .log-row:not([hidden])")
    await expect(rows.last).to_have_text("line 11999")  # stuck to the newest line
    await scroll.evaluate("node => { node.scrollTop = 0; }")
    await expect(rows.first).to_have_text("Update #2 (changed files: api/app.py)")
    await expect(rows.nth(3)).to_have_text("line 00001")
    await page.select_option("#log-level", "2")  # errors only
    await expect(scroll).to_have_attribute("data-lines", "0")


async def test_all_resources_view_prefixes_lines_with_their_resource(daemon, page):
    url, *_ = daemon
    await page.goto(f"{url}/#/all")
    row = page.locator("#log-rows .log-row", has_text="about to crash: config missing")
    await expect(row.locator(".log-resource")).to_have_text("worker")
    await expect(page.locator("#log-rows .log-row", has_text="sources compile").locator(
        ".log-resource")).to_have_text("check")
    await screenshot(page, "all-logs")


async def test_alerts_tab_shows_the_alert_with_a_log_excerpt(daemon, page):
    url, *_ = daemon
    await page.goto(f"{url}/#/r/worker/alerts")
    alert = page.locator("#panel-alerts article.alert")
    await expect(alert.locator(".alert-message")).to_have_text(
        "pod worker-5c4-abc: CrashLoopBackOff")
    await expect(alert.locator(".log-excerpt")).to_contain_text("about to crash: config missing")
    await expect(page.locator("#alert-count")).to_have_text("1")
    await screenshot(page, "alerts")


async def test_a_failed_update_alert_shows_its_build_log(daemon, page):
    # Told by the alert's type, whatever its name (a keyed alert's name has a suffix).
    url, store, *_ = daemon
    store.put("alert", "api-update-compile", spec={"resource": "api", "type": "update",
                                                   "key": "compile"},
              status={"message": "image shop-api: the build failed"})
    await page.goto(f"{url}/#/r/api/alerts")
    alert = page.locator("#panel-alerts article.alert")
    await expect(alert.locator(".badge")).to_have_text("build")
    await expect(alert.locator(".log-excerpt")).to_contain_text(
        "Update #2 (changed files: api/app.py)")


async def test_facets_show_applied_yaml_builds_and_pods(daemon, page):
    url, *_ = daemon
    await page.goto(f"{url}/#/r/api/facets")
    await expect(page.locator("#facet-yaml pre")).to_have_text(APPLIED_YAML)
    history = page.locator("#facet-builds tbody tr")
    await expect(history).to_have_count(2)
    await expect(history.first).to_contain_text("api/app.py")
    await expect(history.first).to_contain_text("1.3s")
    await expect(page.locator("#facet-pods tbody tr")).to_contain_text("Error (exit 1)")
    await expect(page.locator("#facet-build-log pre")).to_contain_text("Update #2")
    await screenshot(page, "facets")


async def test_trigger_and_enable_post_with_the_session_token(daemon, page):
    url, _, _, actions, token = daemon
    await page.goto(url)
    requests = []
    page.on("request", lambda request: requests.append(request))
    await page.locator('li[data-name="api"] button.trigger').click()
    await page.locator('li[data-name="web"] input.enable').uncheck()
    for _ in range(100):
        if len(actions.calls) == 2:
            break
        await asyncio.sleep(0.05)
    await page.fill("#args-input", "-- --no-worker")
    await page.click("#args-form button")
    for _ in range(100):
        if len(actions.calls) == 3:
            break
        await asyncio.sleep(0.05)
    assert actions.calls == [("trigger", {"resource": "api"}), ("disable", {"resource": "web"}),
                             ("args", {"args": ["--no-worker"]})]
    posts = [r for r in requests if r.method == "POST"]
    assert [await r.header_value("x-devloop-token") for r in posts] == [token] * 3


# -- against `devloop up` running the example on the real cluster

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _resource(base: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/v1/resource/{name}", timeout=5) as response:
        return json.loads(response.read())


def test_dashboard_against_real_daemon(testenv, k8s_namespace, tmp_path):
    shop = tmp_path / "shop"
    shutil.copytree(EXAMPLE, shop)
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with devloop_up(shop, kubeconfig, tmp_path / "up.log", "--port", str(port),
                    "--", "--no-worker"), sync_playwright() as playwright:
        _wait_for(lambda: _resource(base, "api"), 60, "the daemon's API")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(base)
            resources = page.locator("li.resource")
            # api, web, check, and the shop's ConfigMap in `uncategorized`, as Tilt groups it
            sync_expect(resources).to_have_count(4, timeout=60_000)
            for name in ("api", "web", "check", "uncategorized"):
                sync_expect(page.locator(f'li.resource[data-name="{name}"] .badge')).to_have_text(
                    "ready", timeout=420_000)
            page.screenshot(path=str(_artifact("real-resource-list")))

            page.goto(f"{base}/#/r/api/logs")
            sync_expect(page.locator("#log-rows .log-row", has_text="api v1 listening").first
                        ).to_be_visible(timeout=60_000)
            page.screenshot(path=str(_artifact("real-logs")))

            page.goto(f"{base}/#/r/api/facets")
            sync_expect(page.locator("#facet-yaml pre")).to_contain_text("kind: Deployment")
            page.screenshot(path=str(_artifact("real-facets")))

            builds = _resource(base, "api")["status"]["builds"]
            page.locator('li[data-name="api"] button.trigger').click()
            _wait_for(lambda: _resource(base, "api")["status"]["builds"] > builds, 300,
                      "a rebuild caused by the trigger button")
            sync_expect(page.locator("#facet-builds tbody tr")).to_have_count(builds + 1)

            app = shop / "web" / "app.py"
            app.write_text('raise SystemExit("injected crash for the dashboard test")\n'
                           + app.read_text())
            page.goto(f"{base}/#/r/web/alerts")
            alert = page.locator("#panel-alerts article.alert").first
            sync_expect(alert).to_be_visible(timeout=300_000)
            sync_expect(alert.locator(".log-excerpt")).to_contain_text(
                "injected crash for the dashboard test", timeout=120_000)
            page.screenshot(path=str(_artifact("real-alerts")))
        finally:
            browser.close()
