"""The dashboard's Facets show a resource's pod events and why a port-forward is down."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.integration.test_dashboard_browser import daemon, page  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


async def test_facets_list_pod_events_and_a_broken_forwards_message(daemon, page):  # noqa: F811
    url, store, *_ = daemon
    api = store.get("resource", "api")
    assert api is not None
    status = dict(api.status)
    status["details"] = {**status.get("details", {}), "events": [
        {"pod": "api-7d9f-x2k", "type": "Normal", "reason": "Scheduled",
         "message": "Successfully assigned", "count": 1, "time": 1_900_000_000},
        {"pod": "api-7d9f-x2k", "type": "Warning", "reason": "Unhealthy",
         "message": "Readiness probe failed: connection refused", "count": 3,
         "time": 1_900_000_010}]}
    store.put("resource", "api", status=status)
    store.put("portforward", "api-18081", spec={"resource": "api", "localPort": 18081,
                                                "containerPort": 8080},
              status={"pod": "api-7d9f-x2k", "state": "error",
                      "message": "connection refused: nothing listens on port 8080 in the pod",
                      "url": "http://localhost:18081/"})
    await page.goto(f"{url}/#/r/api/facets")
    rows = page.locator("#facet-events tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_contain_text("Readiness probe failed: connection refused")
    await expect(rows.nth(1)).to_contain_text("Scheduled")
    await expect(page.locator("#facet-forwards tbody tr")).to_contain_text(
        "error: connection refused: nothing listens on port 8080 in the pod")
