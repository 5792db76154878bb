"""The CLI clients (`devloop get/describe/logs/trigger/enable/disable/args`) against a
running server, through the real command line parser."""

from __future__ import annotations

import asyncio
import io
import json
import socket

import yaml

from devloop import cli
from devloop.client import LOG_PAGE, ClientError, age, run
from tests.unit.server_support import running_daemon


def options(argv):
    own, rest = cli._split_tiltfile_args(argv)
    return cli._parser().parse_args(own), rest


async def client(daemon, *argv):
    """Run a client command in a thread (it blocks) while the server serves on this loop."""
    parsed, rest = options([*argv, "--port", str(daemon.server.port)]
                           if "--" not in argv else [*argv[:argv.index("--")], "--port",
                                                     str(daemon.server.port),
                                                     *argv[argv.index("--"):]])
    out = io.StringIO()
    code = await asyncio.to_thread(run, parsed, rest, out)
    assert code == 0
    return out.getvalue()


def fill(store):
    store.put("resource", "api", spec={"type": "k8s", "labels": ["backend"],
                                       "triggerMode": "auto", "resourceDeps": ["db"],
                                       "links": ["http://127.0.0.1:18081/"]},
              status={"updateStatus": "ok", "runtimeStatus": "error", "builds": 2,
                      "enabled": True, "runtimeReason": "CrashLoopBackOff",
                      "details": {"appliedYaml": "kind: Deployment\nmetadata:\n  name: api\n"}})
    store.put("resource", "docs", spec={"type": "local"},
              status={"updateStatus": "none", "runtimeStatus": "not_applicable",
                      "enabled": False})
    store.put("build", "api-1", spec={"resource": "api", "cause": "initial update"},
              status={"startTime": 1.0, "duration": 4.2, "error": ""})
    store.put("build", "api-2", spec={"resource": "api", "cause": "changed files: app.py"},
              status={"startTime": 2.0, "duration": 1.5, "error": "docker build failed"})
    store.put("alert", "api-runtime-0", spec={"resource": "api"},
              status={"message": "api-7f: CrashLoopBackOff (exit 3)"})
    store.put("pod", "api-7f", spec={"resource": "api"},
              status={"phase": "Running", "ready": False, "restarts": 4,
                      "problem": "CrashLoopBackOff", "created": "2026-01-01T00:00:00+00:00"})


async def test_get_prints_a_table_of_resources(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        lines = (await client(daemon, "get")).splitlines()
        wide = await client(daemon, "get", "resources", "-o", "wide")
        pods = await client(daemon, "get", "pod")
    assert lines[0].split() == ["NAME", "TYPE", "UPDATE", "RUNTIME", "BUILDS", "CHANGED"]
    assert lines[1].split()[:5] == ["api", "k8s", "ok", "error", "2"]
    assert lines[2].split()[:4] == ["docs", "local", "disabled", "not_applicable"]
    assert "http://127.0.0.1:18081/" in wide and "CrashLoopBackOff" in wide
    assert pods.splitlines()[1].split()[:5] == ["api-7f", "api", "Running", "no", "4"]


async def test_get_as_json_and_yaml(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        listing = json.loads(await client(daemon, "get", "build", "-o", "json"))
        one = yaml.safe_load(await client(daemon, "get", "resource", "api", "-o", "yaml"))
    assert [item["metadata"]["name"] for item in listing["items"]] == ["api-1", "api-2"]
    assert one["status"]["runtimeReason"] == "CrashLoopBackOff"


async def test_describe_gathers_what_concerns_a_resource(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        fill(daemon.store)
        text = await client(daemon, "describe", "api")
    assert "Runtime:      error (CrashLoopBackOff)" in text
    assert "Depends on:   db" in text
    assert "api-7f: CrashLoopBackOff (exit 3)" in text          # alert
    assert "api-7f" in text.split("Pods:")[1]                    # pod table
    assert "changed files: app.py" in text                       # build history
    assert "docker build failed" in text.split("Last build error:")[1]
    assert "  kind: Deployment" in text.split("Applied YAML:")[1]


async def test_logs_prints_prefixed_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        daemon.logs.append("api", "api v1 listening", prefix="api-7f")
        daemon.logs.append("web", "GET /")
        text = await client(daemon, "logs", "api")
    assert text.splitlines() == [f"{'api':>14} │ [api-7f] api v1 listening"]


async def test_logs_pages_back_to_print_every_kept_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        for index in range(LOG_PAGE + 1500):  # more than one page of the daemon's answer
            daemon.logs.append("api", f"line {index}")
        lines = (await client(daemon, "logs", "api")).splitlines()
    assert len(lines) == LOG_PAGE + 1500
    assert lines[0].endswith("│ line 0") and lines[-1].endswith(f"│ line {LOG_PAGE + 1499}")


async def test_logs_follow_prints_new_lines_until_the_daemon_stops(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        daemon.logs.append("api", "before")
        parsed, rest = options(["logs", "-f", "--port", str(daemon.server.port)])
        out = io.StringIO()
        following = asyncio.create_task(asyncio.to_thread(run, parsed, rest, out))
        while "before" not in out.getvalue():  # the server subscribed before sending it
            await asyncio.sleep(0.01)
        daemon.logs.append("api", "after")
        while "after" not in out.getvalue():
            await asyncio.sleep(0.01)
        await daemon.server.stop()
        assert await following == 0
    assert [line.split("│ ")[1] for line in out.getvalue().splitlines()] == ["before", "after"]


async def test_actions_use_the_token_from_the_daemon_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        assert await client(daemon, "trigger", "api") == "api triggered\n"
        assert await client(daemon, "disable", "api", "web") == "api disabled\nweb disabled\n"
        await client(daemon, "enable", "web")
        assert "--no-worker" in await client(daemon, "args", "--", "--no-worker")
        assert daemon.actions.calls == [("trigger", "api"), ("disable", "api"),
                                        ("disable", "web"), ("enable", "web"),
                                        ("args", ["--no-worker"])]
        parsed, rest = options(["trigger", "nope", "--port", str(daemon.server.port)])
        try:
            await asyncio.to_thread(run, parsed, rest, io.StringIO())
        except ClientError as exc:
            assert "no resource 'nope'" in str(exc)
        else:
            raise AssertionError("an unknown resource must be an error")


async def test_a_wrong_token_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))
    async with running_daemon(tmp_path) as daemon:
        daemon.server.daemon_file.write_text(json.dumps({"token": "stale"}))
        parsed, rest = options(["trigger", "api", "--port", str(daemon.server.port)])
        try:
            await asyncio.to_thread(run, parsed, rest, io.StringIO())
        except ClientError as exc:
            assert "does not match the daemon" in str(exc)
        else:
            raise AssertionError("a stale token must be an error")


def test_no_daemon_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path))
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert cli.main(["get", "--port", str(port)]) == 1
    assert f"no devloop daemon on http://127.0.0.1:{port}: start `devloop up`" in (
        capsys.readouterr().err)


def test_age_reads_unix_and_iso_times():
    assert age(100.0, now=142.0) == "42s"
    assert age(0, now=1.0) == "-"
    assert age("2026-01-01T00:00:00+00:00", now=1767225600.0 + 3 * 3600 + 600) == "3h10m"
    assert age("not a time") == "-"
