"""The snapshot file: the dashboard's own page with its scripts, style and data inline."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from devloop.cli import main
from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.model import plan as p
from devloop.server.app import start_server
from devloop.snapshot.bundle import BundleError, bundle, module_sources
from devloop.snapshot.render import CONTENT_POLICY, DATA_ELEMENT_ID, render_html
from tests.unit.server_support import FakeActions, running_daemon

WEB = Path(__file__).resolve().parents[2] / "web"


def _data(**extra: object) -> dict:
    return {"version": 1, "createdAt": 1.0, "objects": [], "logs": [], "dropped": {},
            "scrub": {"disabled": False, "values": 0}, **extra}


def test_the_dashboard_bundles_into_one_script_without_module_syntax(tmp_path):
    script = bundle(WEB)
    assert not re.search(r"^\s*(import|export)\b", script, re.MULTILINE)
    for name in ("util.js", "snapshot.js", "api.js", "logview.js", "panels.js", "app.js"):
        assert f'modules["{name}"]' in script
    # Dependencies come first: app.js runs last, once everything it imports exists.
    defined = [m.group(1) for m in re.finditer(r'^modules\["([\w.]+)"\] = ', script, re.M)]
    assert defined.index("app.js") == len(defined) - 1
    assert defined.index("snapshot.js") < defined.index("api.js") < defined.index("logview.js")
    target = tmp_path / "bundle.mjs"
    target.write_text(script)
    node = shutil.which("node")
    assert node, "node (Debian's nodejs) checks the bundle's syntax"
    checked = subprocess.run([node, "--check", str(target)], capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0, checked.stderr


def test_the_page_preloads_exactly_the_modules_app_js_imports():
    """`<link rel="modulepreload">` lets the browser fetch app.js's imports with it; a
    module added, renamed or dropped must change the list too."""
    page = (WEB / "index.html").read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([\w.-]+)">', page))
    assert preloaded == set(module_sources(WEB)) - {"app.js"}


def test_module_syntax_the_bundler_cannot_handle_is_refused_with_the_file(tmp_path):
    (tmp_path / "app.js").write_text('import { a } from "./lib.js";\nconsole.log(a);\n')
    (tmp_path / "lib.js").write_text("const a = 1;\nexport default a;\n")
    with pytest.raises(BundleError, match=r"lib\.js:2: cannot bundle 'export"):
        bundle(tmp_path)
    (tmp_path / "app.js").write_text('import { a } from "./missing.js";\n')
    with pytest.raises(BundleError, match="missing.js"):
        bundle(tmp_path)


def test_the_page_has_no_reference_to_a_file_or_the_network():
    page = render_html(_data(logs=[{"seq": 1, "time": 1.0, "resource": "api",
                                    "source": "runtime", "prefix": "",
                                    "text": "</script><script>alert(1)</script>"}]), WEB)
    assert "/static/" not in page and 'src="' not in page
    assert f'content="{CONTENT_POLICY}"' in page
    assert "connect-src" not in CONTENT_POLICY and "default-src 'none'" in CONTENT_POLICY
    # A log line cannot end the data element early.
    assert page.count("</script>") == 2
    embedded = re.search(rf'<script type="application/json" id="{DATA_ELEMENT_ID}">(.*?)'
                         r"</script>", page, re.DOTALL).group(1)
    assert json.loads(embedded)["logs"][0]["text"] == "</script><script>alert(1)</script>"


async def test_the_daemon_serves_a_snapshot_with_objects_and_logs(tmp_path):
    async with running_daemon(tmp_path, web_dir=WEB) as daemon:
        daemon.store.put("resource", "api", spec={"type": "k8s"},
                         status={"updateStatus": "ok", "runtimeStatus": "ok"})
        daemon.logs.append("api", "api v1 listening on :8080")
        async with daemon.http.get(daemon.url + "/api/v1/snapshot") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "devloop-snapshot-" in response.headers["Content-Disposition"]
            page = await response.text()
    assert "api v1 listening on :8080" in page
    assert '"kind":"resource"' in page


async def test_without_a_dashboard_the_snapshot_is_a_clear_404(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.get("/api/v1/snapshot")
    assert status == 404 and "dashboard is not installed" in body["error"]


def test_the_command_says_when_no_daemon_runs(tmp_path, capsys, unused_tcp_port):
    code = main(["snapshot", "--port", str(unused_tcp_port), "-o", str(tmp_path / "s.html")])
    assert code == 1
    assert "no devloop daemon on" in capsys.readouterr().err
    assert not (tmp_path / "s.html").exists()


async def test_the_command_writes_the_daemons_snapshot(tmp_path, capsys):
    async with running_daemon(tmp_path, web_dir=WEB) as daemon:
        daemon.logs.append("api", "kept line 1")
        target = tmp_path / "out" / "bug.html"
        target.parent.mkdir()
        code = await asyncio.to_thread(
            main, ["snapshot", "--port", str(daemon.server.port), "-o", str(target)])
    assert code == 0, capsys.readouterr().err
    assert "kept line 1" in target.read_text()
    assert f"wrote {target}" in capsys.readouterr().out


@dataclass
class _Engine:
    plan: p.Plan


@dataclass
class _ActionsWithEngine(FakeActions):
    engine: _Engine = field(default_factory=lambda: _Engine(p.Plan(
        tiltfile="Tiltfile", settings=p.Settings(snapshots_disabled=True))))


async def test_disable_snapshots_makes_the_daemon_refuse(tmp_path):
    store, logs = Store(), LogStore()
    server = await start_server(store=store, logs=logs, actions=_ActionsWithEngine(), port=0,
                                web_dir=WEB, state_dir=tmp_path / "state")
    try:
        async with aiohttp.ClientSession() as http, http.get(
                server.url + "/api/v1/snapshot") as response:
            assert response.status == 409
            assert "disable_snapshots()" in (await response.json())["error"]
    finally:
        await server.stop()
