"""The HTTP API and the CLI clients against a real `devloop up` of the example on the cluster."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tests.integration.test_engine_ci import (
    _wait_for,
    devloop_up,
    namespaced_kubeconfig,
    shop,  # noqa: F401 (a fixture)
)

pytestmark = pytest.mark.integration

READY_TIMEOUT = 420


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(url: str, *, body: object = None, headers: dict[str, str] | None = None,
            ) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", **(headers or {})},
        method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def first_events(url: str, count: int) -> list[dict]:
    """The first `count` data payloads of an event stream (what `curl -N` shows)."""
    events = []
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == count:
                    return events
    return events


def client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "devloop", args[0], "--port", str(port), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def resources(base: str) -> dict[str, dict]:
    return {item["metadata"]["name"]: item for item in
            request(f"{base}/api/v1/resource")[1]["items"]}


def all_ready(base: str) -> bool:
    found = resources(base)
    return {"api", "web", "check"} <= set(found) and all(
        item["status"]["updateStatus"] == "ok" and item["status"]["runtimeStatus"] in (
            "ok", "not_applicable") for item in found.values())


def test_api_and_clients_against_a_running_daemon(testenv, k8s_namespace, shop,  # noqa: F811
                                                   tmp_path, monkeypatch):
    monkeypatch.setenv("DEVLOOP_STATE_DIR", str(tmp_path / "state"))  # clients inherit it
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "up.log"
    with devloop_up(shop, kubeconfig, log_path, "--port", str(port), "--", "--no-worker"):
        _wait_for(lambda: all_ready(base), READY_TIMEOUT, "every resource ready over the API")

        # The daemon file: this user only, the token the server expects.
        daemon_file = tmp_path / "state" / f"daemon-{port}.json"
        assert stat.S_IMODE(daemon_file.stat().st_mode) == 0o600
        token = json.loads(daemon_file.read_text())["token"]

        # Every kind the example produces reads the same way.
        kinds = {entry["kind"] for entry in request(f"{base}/api/v1")[1]["kinds"]}
        assert {"resource", "build", "pod", "portforward"} <= kinds
        status, api = request(f"{base}/api/v1/resource/api")
        assert status == 200 and "kind: Deployment" in api["status"]["details"]["appliedYaml"]
        forwards = request(f"{base}/api/v1/portforward")[1]["items"]
        assert any(item["spec"]["localPort"] == 18081 for item in forwards)
        assert request(f"{base}/api/v1/resource/nope")[0] == 404

        # A watch starts with the current objects.
        listed = set(resources(base))
        names = {event["object"]["metadata"]["name"] for event in
                 first_events(f"{base}/api/v1/resource?watch=1", len(listed))}
        assert names == listed and {"api", "web", "check"} <= names

        # Logs are searched on the server.
        lines = request(f"{base}/api/v1/logs?resource=api&q=listening")[1]["lines"]
        assert lines and all("listening" in line["text"] for line in lines)

        # Mutations: no token, a foreign Origin, a foreign Host are all refused.
        assert request(f"{base}/api/v1/actions/trigger", body={"resource": "api"})[0] == 403
        assert request(f"{base}/api/v1/actions/trigger", body={"resource": "api"}, headers={
            "X-Devloop-Token": token, "Origin": "http://evil.example"})[0] == 403
        assert request(f"{base}/api/v1/resource", headers={
            "Host": f"evil.example:{port}"})[0] == 421
        builds_before = resources(base)["check"]["status"]["builds"]

        # The CLI clients.
        table = client(port, "get")
        assert table.returncode == 0, table.stderr
        assert table.stdout.splitlines()[0].split()[:4] == ["NAME", "TYPE", "UPDATE", "RUNTIME"]
        assert {"api", "web", "check"} <= {row.split()[0] for row in
                                           table.stdout.splitlines()[1:]}
        assert json.loads(client(port, "get", "pod", "-o", "json").stdout)["items"]
        described = client(port, "describe", "api")
        assert described.returncode == 0 and "Applied YAML:" in described.stdout
        assert "api" in described.stdout.split("Pods:")[1]
        logs = client(port, "logs", "api")
        assert logs.returncode == 0 and "api v1 listening" in logs.stdout

        triggered = client(port, "trigger", "check")
        assert triggered.returncode == 0, triggered.stderr
        _wait_for(lambda: resources(base)["check"]["status"]["builds"] > builds_before
                  and resources(base)["check"]["status"]["updateStatus"] == "ok", 120,
                  "the triggered update of check")

        disabled = client(port, "disable", "check")
        assert disabled.returncode == 0, disabled.stderr
        _wait_for(lambda: resources(base)["check"]["status"]["enabled"] is False, 30,
                  "check disabled")
        assert client(port, "enable", "check").returncode == 0

        # New Tiltfile args re-evaluate it: without --no-worker the worker appears.
        changed = client(port, "args", "--")
        assert changed.returncode == 0, changed.stderr
        _wait_for(lambda: "worker" in resources(base), 120, "the worker after `devloop args`")
        assert request(f"{base}/api/v1/session/tiltfile")[1]["spec"]["args"] == []
    assert not daemon_file.exists()  # removed when the daemon stopped

    stopped = client(port, "get")
    assert stopped.returncode == 1
    assert f"no devloop daemon on {base}: start `devloop up`" in stopped.stderr
