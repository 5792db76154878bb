"""`devloop up` on real projects: log lines once across rollouts and reloads, no update for
editor temp files or unchanged content, pod events in the log, Facets and alerts."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.request

import pytest
from kubernetes import client

from .projects_support import deployment, devloop_up, kubeconfig_for, wait_for, write_project

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:  # noqa: S310
        return json.loads(r.read())


def test_each_log_line_appears_once_across_a_rollout_and_a_reload(testenv, k8s_namespace,
                                                                   tmp_path):
    template = deployment("talker", 'for i in 1 2 3; do echo "hello $VERSION line $i"; done; '
                          "exec sleep 2147483647", grace=4, env={"VERSION": "VERSION_VALUE"})
    project = write_project(tmp_path / "p", (
        "VERSION = 'v1'\n"
        "k8s_yaml(blob(str(read_file('k8s.yaml')).replace('VERSION_VALUE', VERSION)))\n"),
        [template])
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    core = client.CoreV1Api(testenv.api_client())
    with devloop_up(project, kubeconfig, log_path):
        wait_for(lambda: "hello v1 line 3" in log_path.read_text(), 180, "the first pod's log")
        tiltfile = project / "Tiltfile"
        tiltfile.write_text(tiltfile.read_text().replace("'v1'", "'v2'"))
        wait_for(lambda: "hello v2 line 3" in log_path.read_text(), 180, "the new pod's log")
        # The old pod stops within its grace period; followers see it go.
        wait_for(lambda: len(core.list_namespaced_pod(k8s_namespace).items) == 1, 120,
                 "the old pod to be gone")
        wait_for(lambda: "Tiltfile loaded" in log_path.read_text(), 30, "the reload")
    output = log_path.read_text()
    for line in ("hello v1 line 1", "hello v1 line 3", "hello v2 line 1", "hello v2 line 3"):
        assert output.count(line) == 1, (line, output)


def test_editor_temp_files_and_unchanged_content_do_not_rebuild(testenv, k8s_namespace,
                                                                 tmp_path):
    project = write_project(tmp_path / "p", (
        "docker_build('echoer', 'app')\n"
        "k8s_yaml('k8s.yaml')\n"), [deployment("echoer", "cat /data.txt; exec sleep 2147483647",
                                               image="echoer")],
        files={"app/Dockerfile": "FROM busybox\nCOPY data.txt /data.txt\n",
               "app/data.txt": "one\n"})
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    data = project / "app" / "data.txt"
    with devloop_up(project, kubeconfig, log_path):
        wait_for(lambda: re.search(r"\[echoer-[a-z0-9-]+\] one", log_path.read_text()), 240,
                 "the first deploy's log")
        # sed -i writes sedXXXXXX next to the file and renames it over: same bytes.
        subprocess.run(["sed", "-i", "s/one/one/", str(data)], check=True)
        wait_for(lambda: "same content as deployed: nothing to update" in log_path.read_text(),
                 60, "the update that finds nothing changed")
        data.write_text("two\n")
        wait_for(lambda: log_path.read_text().count("Applying") == 2, 240,
                 "the rebuild for a real change")
    output = log_path.read_text()
    assert not re.search(r"sed[A-Za-z0-9]{6}", output), output
    assert output.count("Building image echoer") == 2, output
    assert "Will not live update" not in output
    assert "(triggered)" not in output


def test_pod_events_are_in_the_log_and_facets_and_warnings_are_alerts(testenv, k8s_namespace,
                                                                       tmp_path):
    probe = {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 1}
    project = write_project(tmp_path / "p", "k8s_yaml('k8s.yaml')\n", [
        deployment("never-ready", "echo started; exec sleep 2147483647", readiness=probe)])
    kubeconfig = kubeconfig_for(testenv, k8s_namespace, tmp_path)
    log_path = tmp_path / "up.log"
    port = free_port()
    with devloop_up(project, kubeconfig, log_path, "--port", str(port)):
        wait_for(lambda: "Readiness probe failed" in log_path.read_text(), 180,
                 "the probe's warning event in the log")
        alerts = wait_for(lambda: [a for a in api(port, "/api/v1/alert")["items"]
                                   if "Readiness probe failed" in a["status"]["message"]],
                          60, "the warning as an alert")
        resource = api(port, "/api/v1/resource/never-ready")
    output = log_path.read_text()
    assert re.search(r"\[event: pod never-ready-[a-z0-9-]+\] Scheduled: ", output), output
    assert "[event: pod never-ready-" in output and "] Started: " in output
    assert alerts[0]["spec"]["resource"] == "never-ready"
    reasons = {e["reason"] for e in resource["status"]["details"]["events"]}
    assert {"Scheduled", "Started", "Unhealthy"} <= reasons
