"""`devloop snapshot` and the dashboard's Snapshot button against a real `devloop up` on the
test cluster; the file opens in headless Chromium with every network request refused.

The session applies a Kubernetes Secret and a local_resource prints its value, so the test
also shows the value scrubbed from the logs and from the applied YAML. A screenshot of the
snapshot goes to test-artifacts/snapshot/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import expect, sync_playwright

from tests.integration.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, _free_port
from tests.integration.test_engine_ci import _wait_for, devloop_up, namespaced_kubeconfig

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "snapshot"
PASSWORD = "s3cr3t-hunter2-prod"


def _resource(base: str, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/v1/resource/{name}", timeout=5) as response:
        return json.loads(response.read())


def _ready(base: str, name: str) -> bool:
    status = _resource(base, name)["status"]
    return status.get("updateStatus") == "ok" and status.get("runtimeStatus") in (
        "ok", "not_applicable")


def _project(directory: Path) -> Path:
    directory.mkdir()
    (directory / "secret.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-credentials"},
        "stringData": {"password": PASSWORD}}))
    (directory / "Tiltfile").write_text(
        'k8s_yaml("secret.yaml")\n'
        f'local_resource("migrate", "echo connecting as app with password {PASSWORD}; '
        'echo migrations applied: 7", resource_deps=["uncategorized"])\n')
    return directory


def test_snapshot_opens_offline_and_shows_the_logs_with_secrets_scrubbed(
        testenv, k8s_namespace, tmp_path):
    project = _project(tmp_path / "project")
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    target = tmp_path / "bug-report.html"
    with devloop_up(project, kubeconfig, tmp_path / "up.log", "--port", str(port)):
        _wait_for(lambda: _ready(base, "migrate") and _ready(base, "uncategorized"), 180,
                  "migrate and the Secret's resource")
        made = subprocess.run(
            [sys.executable, "-m", "devloop", "snapshot", "--port", str(port), "-o", str(target)],
            capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert made.returncode == 0, made.stdout + made.stderr
        assert f"wrote {target}" in made.stdout

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=CHROMIUM_ARGS)
            try:
                # The dashboard's button: the daemon hands over the same kind of file.
                live = browser.new_page(accept_downloads=True)
                live.goto(base)
                expect(live.locator("li.resource")).to_have_count(2, timeout=30_000)
                with live.expect_download() as download_info:
                    live.locator("#snapshot-button").click()
                download = download_info.value
                assert download.suggested_filename.startswith("devloop-snapshot-")
                downloaded = tmp_path / "from-button.html"
                download.save_as(downloaded)
                assert "migrations applied: 7" in downloaded.read_text()
                assert PASSWORD not in downloaded.read_text()
                live.close()

                # Offline: every request other than the file itself is refused and recorded.
                context = browser.new_context(viewport={"width": 1200, "height": 640})
                requests: list[str] = []
                context.on("request", lambda request: requests.append(request.url))
                context.route("**/*", lambda route: route.continue_()
                              if route.request.url.startswith("file:") else route.abort())
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(target.as_uri() + "#/r/migrate/logs")
                expect(page.locator("#connection")).to_contain_text("snapshot of")
                row = page.locator("#log-rows .log-row", has_text="migrations applied: 7")
                expect(row.first).to_be_visible(timeout=15_000)
                expect(page.locator("#log-rows .log-row",
                                    has_text="[redacted secret").first).to_be_visible()
                expect(page.locator('li.resource[data-name="migrate"] .badge')).to_have_text(
                    "ready")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "snapshot-logs.png"))

                # The Facets of the Secret's resource: its applied YAML, scrubbed.
                page.goto(target.as_uri() + "#/r/uncategorized/facets")
                expect(page.locator("#panel-facets")).to_contain_text("db-credentials")
                assert PASSWORD not in page.content()
                assert errors == []
                assert [url for url in requests if not url.startswith("file:")] == []
            finally:
                browser.close()
    text = target.read_text()
    assert PASSWORD not in text and "[redacted secret" in text
    assert "migrations applied: 7" in text
