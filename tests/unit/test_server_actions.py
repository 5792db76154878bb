"""Actions over HTTP: trigger, enable/disable and Tiltfile args reach the Actions; errors are
404/400/409 JSON. The Engine adapter against a real engine."""

from __future__ import annotations

from devloop.daemon.session import make_runner_factory
from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.runner import RunnerHooks
from devloop.engine.store import Store
from devloop.server.actions import ActionRefused
from devloop.server.engine_actions import EngineActions
from tests.unit.server_support import running_daemon


async def test_trigger_enable_disable_and_args_reach_the_engine(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        assert (await daemon.post("/api/v1/actions/trigger", {"resource": "api"}))[0] == 200
        assert (await daemon.post("/api/v1/actions/disable", {"resource": "web"}))[0] == 200
        status, body = await daemon.post("/api/v1/actions/enable",
                                         {"resources": ["web", "api"]})
        assert status == 200 and body["resources"] == ["web", "api"]
        status, body = await daemon.post("/api/v1/actions/args", {"args": ["--no-worker"]})
        assert status == 200 and body["args"] == ["--no-worker"]
        assert daemon.actions.calls == [("trigger", "api"), ("disable", "web"),
                                        ("enable", "web"), ("enable", "api"),
                                        ("args", ["--no-worker"])]


async def test_unknown_resource_is_404_and_nothing_runs(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        status, body = await daemon.post("/api/v1/actions/enable",
                                         {"resources": ["api", "nope"]})
        assert status == 404 and "'nope'" in body["error"] and "api, web" in body["error"]
        assert daemon.actions.calls == []


async def test_malformed_bodies_are_400(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        assert (await daemon.post("/api/v1/actions/trigger", {}))[0] == 400
        assert (await daemon.post("/api/v1/actions/trigger", {"resource": 3}))[0] == 400
        assert (await daemon.post("/api/v1/actions/args", {"args": "--x"}))[0] == 400
        async with daemon.http.post(f"{daemon.url}/api/v1/actions/trigger", data=b"{not json",
                                    headers=daemon.auth()) as response:
            assert response.status == 400 and "JSON" in (await response.json())["error"]


async def test_refused_action_is_409(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        daemon.actions.args_allowed = False
        status, body = await daemon.post("/api/v1/actions/args", {"args": []})
        assert status == 409 and "devloop up" in body["error"]


async def test_actions_are_post_only(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        async with daemon.http.get(f"{daemon.url}/api/v1/actions/trigger") as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
            assert "error" in await response.json()
        assert daemon.actions.calls == []


class _Reloader:
    def __init__(self):
        self.requested = 0

    def request_reload(self):
        self.requested += 1


def _engine(tiltfile):
    plan = tiltfile("""
        local_resource("first", cmd="true", trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False)
        local_resource("second", cmd="true", trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False)
    """).plan
    store, logs = Store(), LogStore()
    hooks = RunnerHooks(log=lambda r, t, s, p: logs.append(r, t, source=s, prefix=p),
                        changed=lambda: None)
    return Engine(plan, store=store, logs=logs,
                  runner_factory=make_runner_factory(hooks, None))


async def test_engine_actions_trigger_and_disable_resources(tiltfile):
    engine = _engine(tiltfile)
    actions = EngineActions(engine, _Reloader(), lambda args: None)
    assert actions.names() == ["first", "second"]
    actions.trigger("first")
    assert engine.store.get("resource", "first").status["updateStatus"] == "pending"
    actions.set_enabled("second", False)
    assert engine.store.get("resource", "second").status["enabled"] is False
    for call in (lambda: actions.trigger("nope"), lambda: actions.set_enabled("nope", True)):
        try:
            call()
        except KeyError:
            pass
        else:
            raise AssertionError("an unknown resource must raise KeyError")
    await engine.close()


async def test_engine_actions_change_args_and_reload(tiltfile):
    engine, reloader, seen = _engine(tiltfile), _Reloader(), []
    actions = EngineActions(engine, reloader, seen.append, initial_args=["--a"])
    assert engine.store.get("session", "tiltfile").spec["args"] == ["--a"]
    actions.set_args(["--b", "x"])
    assert seen == [["--b", "x"]] and reloader.requested == 1
    assert engine.store.get("session", "tiltfile").spec["args"] == ["--b", "x"]
    assert any("args changed: --b x" in line.text for line in engine.logs.lines())
    without_reloader = EngineActions(engine, None, None)
    try:
        without_reloader.set_args([])
    except ActionRefused:
        pass
    else:
        raise AssertionError("args must be refused without a reloader")
    await engine.close()
