"""The dashboard shows a Compose service's containers, health, ports and effective config."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.integration import test_compose
from tests.integration.test_compose import (
    NO_CLUSTER,
    ORDERED,
    WEB_FILES,
    api,
    free_port,
    write_project,
)
from tests.integration.test_engine_ci import _wait_for, devloop_up

pytestmark = pytest.mark.integration
cleanup = test_compose.cleanup  # the fixture that runs `devloop down` after the test

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]


def test_facets_of_a_compose_service(testenv, tmp_path, cleanup, monkeypatch):
    web_port, port = free_port(), free_port()
    monkeypatch.setenv("WEB_PORT", str(web_port))
    directory = tmp_path / "p"
    project = write_project(directory, ORDERED,
                            "docker_compose('compose.yaml', project_name='PROJECT')\n",
                            WEB_FILES)
    cleanup.append(directory)
    base = f"http://127.0.0.1:{port}"
    with devloop_up(directory, NO_CLUSTER, tmp_path / "up.log", "--port", str(port)), \
            sync_playwright() as playwright:
        _wait_for(lambda: api(port, "resource/db")["status"]["runtimeStatus"] == "ok", 240,
                  "db healthy")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/#/r/db/facets")
            rows = page.locator("#facet-containers tbody tr")
            expect(rows).to_have_count(1, timeout=30_000)
            expect(rows.first).to_contain_text(f"{project}-db-1")
            expect(rows.first).to_contain_text("healthy")
            config = page.locator("#facet-compose-config pre")
            expect(config).to_contain_text("healthcheck", timeout=30_000)
            expect(config).to_contain_text("/ready")

            page.goto(f"{base}/#/r/web/facets")
            web_rows = page.locator("#facet-containers tbody tr")
            expect(web_rows.first).to_contain_text(f"127.0.0.1:{web_port}->8000/tcp",
                                                   timeout=120_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "compose-facets.png"))
        finally:
            browser.close()
