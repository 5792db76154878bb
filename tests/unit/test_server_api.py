"""The resource API: every kind listed and read the same way, the dashboard page, the daemon
file."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

from yarl import URL

from devloop.server.app import inject_token, normalize_kind
from tests.unit.server_support import read_events, running_daemon

WEB = Path(__file__).resolve().parents[2] / "web"

KINDS = {
    "resource": {"spec": {"type": "k8s", "labels": ["backend"]},
                 "status": {"updateStatus": "ok", "runtimeStatus": "ok"}},
    "build": {"spec": {"resource": "api", "cause": "initial update", "files": []},
              "status": {"startTime": 1.0, "duration": 2.5, "error": ""}},
    "alert": {"spec": {"resource": "api"}, "status": {"message": "CrashLoopBackOff"}},
    "pod": {"spec": {"resource": "api"}, "status": {"phase": "Running", "ready": True}},
    "portforward": {"spec": {"resource": "api", "localPort": 8080},
                    "status": {"state": "active"}},
    "session": {"spec": {}, "status": {"error": ""}},
    "liveupdate": {"spec": {"resource": "api"}, "status": {"synced": 3}},
}


def fill(store):
    for kind, body in KINDS.items():
        store.put(kind, "api-1" if kind in ("build", "pod", "alert") else "api",
                  spec=body["spec"], status=body["status"])


async def test_every_kind_is_listed_with_spec_status_and_version(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        for kind, body in KINDS.items():
            async with daemon.http.get(f"{daemon.url}/api/v1/{kind}") as response:
                assert response.status == 200
                listing = await response.json()
            assert listing["kind"] == kind
            assert listing["resourceVersion"] == str(daemon.store.version)
            [item] = listing["items"]
            assert item["kind"] == kind
            assert item["spec"] == body["spec"] and item["status"] == body["status"]
            assert int(item["metadata"]["resourceVersion"]) > 0


async def test_one_object_by_kind_and_name(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        async with daemon.http.get(f"{daemon.url}/api/v1/pod/api-1") as response:
            pod = await response.json()
        assert pod["metadata"]["name"] == "api-1"
        assert pod["status"]["phase"] == "Running"


async def test_missing_object_is_a_json_404(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/resource/nope")
    assert status == 404 and "nope" in body["error"]


async def test_a_kind_not_used_yet_is_an_empty_list(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/liveupdate")
    assert status == 200 and body["items"] == []


async def test_plural_names_a_kind(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        async with daemon.http.get(f"{daemon.url}/api/v1/pods") as response:
            listing = await response.json()
        assert listing["kind"] == "pod" and len(listing["items"]) == 1
    assert normalize_kind("portforwards", []) == "portforward"
    assert normalize_kind("widgets", ["widget"]) == "widget"
    assert normalize_kind("brand-new", []) == "brand-new"


async def test_index_lists_kinds_with_counts(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        daemon.store.put("pod", "api-2", spec={"resource": "api"}, status={})
        async with daemon.http.get(f"{daemon.url}/api/v1") as response:
            index = await response.json()
        counts = {entry["kind"]: entry["count"] for entry in index["kinds"]}
        assert counts["pod"] == 2 and counts["resource"] == 1
        async with daemon.http.get(f"{daemon.url}/api/v1/all") as response:
            assert len((await response.json())["items"]) == len(KINDS) + 1


async def test_unknown_route_is_json(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/a/b/c")
    assert status == 404 and "error" in body


async def test_dashboard_page_carries_the_token(tmp_path):
    web = tmp_path / "web"
    (web / "js").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html><html><head><title>d</title></head>"
                                    "<body></body></html>")
    (web / "js" / "app.js").write_text("console.log('hi')")
    async with running_daemon(tmp_path, web_dir=web) as daemon:
        async with daemon.http.get(f"{daemon.url}/") as response:
            page = await response.text()
        assert f'<meta name="devloop-token" content="{daemon.server.token}">' in page
        assert page.index("devloop-token") < page.index("<title>")
        async with daemon.http.get(f"{daemon.url}/static/js/app.js") as response:
            assert await response.text() == "console.log('hi')"
        escape = URL(f"{daemon.url}/static/..%2F..%2F..%2Fetc%2Fpasswd", encoded=True)
        async with daemon.http.get(escape) as response:
            assert response.status == 404


async def test_dashboard_page_carries_the_state_and_the_version_to_watch_from(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><html><head><title>d</title></head>"
                                    "<body></body></html>")
    async with running_daemon(tmp_path, web_dir=web) as daemon:
        daemon.store.put("resource", "api", spec={"note": "</script><script>x()</script>"},
                         status={})
        daemon.store.put("pod", "api-1", spec={}, status={})
        daemon.store.delete("pod", "api-1")
        async with daemon.http.get(f"{daemon.url}/") as response:
            page = await response.text()
        found = re.search(r'<script type="application/json" id="devloop-state">(.*?)</script>',
                          page, re.DOTALL)
        assert found, page
        state = json.loads(found.group(1))
        # The deletion counts: the page is as new as the third change.
        assert state["version"] == 3
        assert [(o["kind"], o["metadata"]["name"]) for o in state["objects"]] == [
            ("resource", "api")]
        assert state["objects"][0]["spec"]["note"] == "</script><script>x()</script>"
        daemon.store.put("resource", "web", spec={}, status={})
        url = f"{daemon.url}/api/v1/watch?resourceVersion={state['version']}"
        async with daemon.http.get(url) as response:
            events = await read_events(response, 1)
        assert [(e["data"]["type"], e["data"]["object"]["metadata"]["name"])
                for e in events] == [("MODIFIED", "web")]


async def test_the_dashboard_page_needs_no_other_file(tmp_path):
    """Its stylesheet and modules are inline (devloop.snapshot.page), so it runs its script as
    soon as it is parsed; the browser test (test_dashboard_browser) shows that page working."""
    async with running_daemon(tmp_path, web_dir=WEB) as daemon, daemon.http.get(
            f"{daemon.url}/") as response:
        page = await response.text()
    assert "/static/" not in page and 'src="' not in page
    assert page.count('<script type="module">') == 1 and page.count("<style>") == 1
    assert 'modules["app.js"]' in page and ".resource-name" in page
    assert page.index('<script type="module">') < page.index('id="devloop-state"')


async def test_a_module_the_bundler_refuses_leaves_the_page_fetching_its_files(tmp_path):
    web = tmp_path / "web"
    shutil.copytree(WEB, web)
    (web / "util.js").write_text((web / "util.js").read_text() + "export default 1;\n")
    async with running_daemon(tmp_path, web_dir=web) as daemon:
        async with daemon.http.get(f"{daemon.url}/") as response:
            page = await response.text()
        assert '<script type="module" src="/static/app.js"></script>' in page
        async with daemon.http.get(f"{daemon.url}/static/util.js") as response:
            assert "export default 1;" in await response.text()


async def test_without_the_dashboard_the_page_says_so(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        async with daemon.http.get(f"{daemon.url}/") as response:
            page = await response.text()
        assert "dashboard is not installed" in page
        assert daemon.server.token in page


def test_token_goes_into_the_head_or_first():
    assert inject_token("<HEAD lang=x>t</HEAD>", "abc").startswith(
        '<HEAD lang=x><meta name="devloop-token" content="abc">')
    assert inject_token("<p>no head</p>", "abc").startswith('<meta name="devloop-token"')


async def test_daemon_file_holds_url_and_token_for_this_user_only(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        path = tmp_path / "state" / f"daemon-{daemon.server.port}.json"
        assert daemon.server.port != 0 and daemon.server.daemon_file == path
        data = json.loads(path.read_text())
        assert data == {"url": daemon.url, "token": daemon.server.token, "pid": os.getpid()}
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not path.exists()  # removed when the server stops
