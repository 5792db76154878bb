"""Compose resources on the real Docker engine with the real `docker compose` plugin.

The projects here are small busybox services (the test environment's `busybox` image), so
each test spends its time on devloop's behaviour, not on image builds; the example with
Redis built from Debian's packages has its own test in test_compose_example.py.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.test_engine_ci import _get, _wait_for, devloop_up

pytestmark = pytest.mark.integration

# Nothing here may need a cluster: every command runs with a kubeconfig that does not exist.
NO_CLUSTER = Path("/nonexistent/kubeconfig")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def devloop(args: list[str], *, cwd: Path, timeout: float = 300,
            ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(NO_CLUSTER), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "devloop", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True,
                          timeout=120).stdout


def containers(project: str) -> dict[str, dict]:
    """The project's containers by service, from `docker inspect`."""
    ids = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
    found = json.loads(docker("inspect", *ids)) if ids else []
    return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in found}


def volumes(project: str) -> list[str]:
    return docker("volume", "ls", "-q", "--filter",
                  f"label=com.docker.compose.project={project}").split()


def timestamp(text: str) -> float:
    main, _, fraction = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(main + "+00:00").timestamp() + float(f"0.{fraction[:6] or 0}")


def write_project(directory: Path, compose: str, tiltfile: str, files: dict[str, str]) -> str:
    """A project in `directory` with a unique project name (returned)."""
    name = f"dltest{uuid.uuid4().hex[:8]}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "compose.yaml").write_text(textwrap.dedent(compose))
    (directory / "Tiltfile").write_text(textwrap.dedent(tiltfile).replace("PROJECT", name))
    for rel, content in files.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(textwrap.dedent(content))
    return name


@pytest.fixture
def cleanup():
    """Projects a test started are removed afterwards, whatever happened: `devloop down`,
    and Compose itself by project name when the test left a broken compose file behind."""
    projects: list[Path] = []
    yield projects
    for directory in projects:
        down = devloop(["down", "--volumes"], cwd=directory)
        name = re.search(r"project_name='([^']+)'", (directory / "Tiltfile").read_text())
        if down.returncode != 0 and name:
            subprocess.run(["docker", "compose", "-p", name.group(1), "down", "--volumes",
                            "--remove-orphans"], capture_output=True, check=False, timeout=120)


# `db` turns healthy only after a few seconds; `web` waits for that (depends_on with
# condition: service_healthy) and serves /www over HTTP.
ORDERED = """\
services:
  db:
    image: busybox
    command: ["sh", "-c", "echo db starting; sleep 3; touch /ready; echo db ready; sleep 100000"]
    volumes:
      - data:/data
    healthcheck:
      test: ["CMD", "test", "-f", "/ready"]
      interval: 1s
      retries: 60
  web:
    build: ./web
    ports:
      - "127.0.0.1:${WEB_PORT}:8000"
    depends_on:
      db:
        condition: service_healthy
volumes:
  data: {}
"""
WEB_FILES = {
    "web/Dockerfile": """\
        FROM busybox
        COPY www /www
        CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]
        """,
    "web/www/index.html": "v1\n",
}


def test_ci_orders_by_health_needs_no_cluster_and_down_keeps_volumes(testenv, tmp_path,
                                                                     cleanup, monkeypatch):
    port = free_port()
    monkeypatch.setenv("WEB_PORT", str(port))
    project = write_project(tmp_path / "p", ORDERED,
                            "docker_compose('compose.yaml', project_name='PROJECT')\n",
                            WEB_FILES)
    cleanup.append(tmp_path / "p")
    result = devloop(["ci", "--timeout", "4m", "--port", str(free_port())], cwd=tmp_path / "p")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "db ready" in result.stdout  # the service's own log, streamed into its resource
    assert _get(f"http://127.0.0.1:{port}/") == "v1\n"

    running = containers(project)
    db, web = running["db"], running["web"]
    checks = db["State"]["Health"]["Log"]
    first_healthy = min(timestamp(c["End"]) for c in checks if c["ExitCode"] == 0)
    assert timestamp(web["State"]["StartedAt"]) >= first_healthy  # web waited for healthy db
    # `build:` was built by Compose, under Compose's own image name.
    assert web["Config"]["Image"] == f"{project}-web"

    down = devloop(["down"], cwd=tmp_path / "p")
    assert down.returncode == 0, down.stdout + down.stderr
    assert containers(project) == {}
    assert volumes(project), "down without --volumes removed the named volume"
    down = devloop(["down", "--volumes"], cwd=tmp_path / "p")
    assert down.returncode == 0, down.stdout + down.stderr
    assert volumes(project) == []


def test_a_crashing_service_fails_ci_with_an_alert_and_its_log(testenv, tmp_path, cleanup):
    write_project(tmp_path / "p", """\
        services:
          ok:
            image: busybox
            command: ["sleep", "100000"]
          crash:
            image: busybox
            command: ["sh", "-c", "echo loading config; echo fatal: no config >&2; exit 3"]
        """, "docker_compose('compose.yaml', project_name='PROJECT')\n", {})
    cleanup.append(tmp_path / "p")
    result = devloop(["ci", "--timeout", "2m", "--port", str(free_port())], cwd=tmp_path / "p")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "crash" in output and "exited with code 3" in output
    assert "fatal: no config" in output


def test_a_restarting_service_is_an_alert(testenv, tmp_path, cleanup):
    write_project(tmp_path / "p", """\
        services:
          flaky:
            image: busybox
            restart: always
            command: ["sh", "-c", "echo run; sleep 1; exit 7"]
        """, "docker_compose('compose.yaml', project_name='PROJECT')\n", {})
    cleanup.append(tmp_path / "p")
    result = devloop(["ci", "--timeout", "2m", "--port", str(free_port())], cwd=tmp_path / "p")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "container" in output and "flaky" in output
    assert "crash looping" in output or "restarting after exit code 7" in output
    assert "\n  run\n" in output  # its own log, in the failure summary


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{path}",  # noqa: S310
                                timeout=5) as response:
        return json.loads(response.read())


def action(port: int, name: str, resource: str) -> None:
    token = json.loads((Path.home() / ".cache" / "devloop" / f"daemon-{port}.json")
                       .read_text())["token"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/actions/{name}", method="POST",
        data=json.dumps({"resource": resource}).encode(),
        headers={"X-Devloop-Token": token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def resource_status(port: int, name: str) -> dict:
    return api(port, f"resource/{name}")["status"]


LIVE = """\
services:
  web:
    image: dltest/web
    ports:
      - "127.0.0.1:${WEB_PORT}:8000"
  side:
    image: busybox
    command: ["sh", "-c", "echo side up; sleep 100000"]
"""
LIVE_TILTFILE = """\
docker_compose('compose.yaml', project_name='PROJECT')
docker_build('dltest/web', 'web', live_update=[
    fall_back_on(['web/Dockerfile']),
    sync('web/www', '/www'),
    run('echo synced > /www/marker'),
    restart_container(),
])
dc_resource('web', labels=['frontend'])
"""


def test_up_live_updates_disables_and_survives_a_broken_compose_file(testenv, tmp_path,
                                                                     cleanup, monkeypatch):
    web_port, api_port = free_port(), free_port()
    monkeypatch.setenv("WEB_PORT", str(web_port))
    directory = tmp_path / "p"
    project = write_project(directory, LIVE, LIVE_TILTFILE, WEB_FILES)
    cleanup.append(directory)
    log = tmp_path / "up.log"
    with devloop_up(directory, NO_CLUSTER, log, "--port", str(api_port)):
        url = f"http://127.0.0.1:{web_port}/"
        _wait_for(lambda: _get(url) == "v1\n", 240, "web answering v1")
        first = containers(project)["web"]["Id"]
        assert resource_status(api_port, "web")["runtimeStatus"] == "ok"
        spec = api(api_port, "resource/web")["spec"]
        assert spec["labels"] == ["frontend"]
        assert f"http://localhost:{web_port}/" in spec["links"]

        # Live update: the file goes in through the Docker API, the run step runs, the
        # container restarts, and it is the same container (no rebuild, no recreate).
        (directory / "web/www/index.html").write_text("v2\n")
        _wait_for(lambda: _get(url) == "v2\n", 60, "web answering v2 after a save")
        web = containers(project)["web"]
        assert web["Id"] == first
        assert _get(url + "marker") == "synced\n"  # the run step ran in the container
        _wait_for(lambda: any(u["status"]["result"] == "ok" for u in api(
            api_port, "liveupdate")["items"]), 30, "the live update recorded as ok")

        # A fall_back_on file rebuilds the image: Compose recreates the container from it.
        dockerfile = directory / "web/Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + "LABEL rebuilt=yes\n")
        _wait_for(lambda: containers(project)["web"]["Id"] != first, 120,
                  "web recreated from the rebuilt image")
        _wait_for(lambda: _get(url) == "v2\n", 60, "the rebuilt web answering v2")
        assert containers(project)["web"]["Config"]["Labels"].get("rebuilt") == "yes"

        # Disable removes the container; enable brings it back.
        action(api_port, "disable", "web")
        _wait_for(lambda: "web" not in containers(project), 60, "web's container removed")
        assert "side" in containers(project)
        action(api_port, "enable", "web")
        _wait_for(lambda: _get(url) == "v2\n" or _get(url) == "v1\n", 120, "web back")

        # Editing one service's config re-runs `up` for it: Compose recreates its container.
        side = containers(project)["side"]["Id"]
        (directory / "compose.yaml").write_text(LIVE.replace("echo side up", "echo side v2"))
        _wait_for(lambda: "side v2" in log.read_text(), 90, "side recreated with its new command")
        assert containers(project)["side"]["Id"] != side
        assert containers(project)["web"]["State"]["Status"] == "running"

        # A broken compose file: a clear error naming file and line; the rest keeps running.
        (directory / "compose.yaml").write_text(LIVE.replace("  side:\n", "  side: [\n"))
        _wait_for(lambda: "compose.yaml:8:12: expected" in log.read_text(), 60,
                  "the compose file's error with its line")
        time.sleep(2)
        assert _get(url) in ("v1\n", "v2\n")
        assert resource_status(api_port, "side")["runtimeStatus"] == "ok"
        (directory / "compose.yaml").write_text(LIVE)  # fixed again: `down` can read it
    text = log.read_text()
    assert "side up" in text  # each service's log streamed into its resource
