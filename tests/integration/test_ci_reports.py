"""`devloop ci --junit-xml/--report-json` on real failing runs: a local_resource whose command
fails, and a Kubernetes workload that crashes on the test cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
import yaml

from tests.integration.test_engine_ci import CI_TIMEOUT, namespaced_kubeconfig

pytestmark = pytest.mark.integration

SCHEMA = xmlschema.XMLSchema(Path(__file__).resolve().parents[1] / "junit.xsd")


def _ci(project: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devloop", "ci", "--port", "0", *args],
                          cwd=project, env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                          capture_output=True, text=True, timeout=600, check=False)


def _cases(path: Path) -> dict[str, ET.Element]:
    text = path.read_text()
    SCHEMA.validate(text)
    return {case.get("name"): case for case in ET.fromstring(text).iter("testcase")}


def test_a_failing_local_resource_is_a_junit_failure_with_its_log(tmp_path):
    project = tmp_path / "local"
    project.mkdir()
    (project / "Tiltfile").write_text(
        'local_resource("lint", "echo lint clean")\n'
        'local_resource("unit", "echo 3 tests ran; echo assertion failed: want 2 got 3; '
        'exit 4", resource_deps=["lint"])\n')
    junit, report = tmp_path / "reports" / "junit.xml", tmp_path / "reports" / "run.json"
    result = _ci(project, "--junit-xml", str(junit), "--report-json", str(report), env={})
    assert result.returncode == 1, result.stdout + result.stderr
    cases = _cases(junit)
    assert set(cases) == {"lint", "unit"}
    assert cases["lint"].find("failure") is None
    failure = cases["unit"].find("failure")
    assert failure is not None and "exit" in failure.get("message")
    assert "assertion failed: want 2 got 3" in failure.text
    assert float(cases["unit"].get("time")) > 0
    data = json.loads(report.read_text())
    assert data["result"] == "failure" and data["failedResource"] == "unit"
    lint = next(r for r in data["resources"] if r["name"] == "lint")
    assert lint["result"] == "passed" and lint["readyAfter"] is not None
    assert lint["builds"][0]["duration"] >= 0


def test_a_crashing_pod_is_a_junit_failure_and_a_github_annotation(testenv, k8s_namespace,
                                                                    tmp_path):
    project = tmp_path / "crash"
    project.mkdir()
    (project / "Dockerfile").write_text(
        'FROM busybox\nCMD ["sh", "-c", "echo about to crash: config missing; exit 3"]\n')
    (project / "app.yaml").write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "crasher"},
        "spec": {"selector": {"matchLabels": {"app": "crasher"}}, "template": {
            "metadata": {"labels": {"app": "crasher"}},
            "spec": {"containers": [{"name": "main", "image": "crasher"}]}}}}))
    (project / "Tiltfile").write_text(
        'local_resource("compile", "echo compiled")\n'
        'docker_build("crasher", ".")\nk8s_yaml("app.yaml")\n'
        'k8s_resource("crasher", resource_deps=["compile"])\n')
    kubeconfig = namespaced_kubeconfig(testenv, k8s_namespace, tmp_path)
    junit = tmp_path / "junit.xml"
    result = _ci(project, "--timeout", CI_TIMEOUT, "--junit-xml", str(junit),
                 env={"KUBECONFIG": str(kubeconfig), "GITHUB_ACTIONS": "true"})
    assert result.returncode == 1, result.stdout + result.stderr
    cases = _cases(junit)
    assert cases["compile"].find("failure") is None
    assert cases["crasher"].get("classname") == "devloop.k8s"
    failure = cases["crasher"].find("failure")
    assert failure is not None, ET.tostring(cases["crasher"]).decode()
    assert failure.get("type") == "runtime"
    assert "about to crash: config missing" in failure.text
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    assert len(annotations) == 1, result.stdout
    assert annotations[0].startswith("::error title=devloop ci%3A crasher::")
    assert "about to crash: config missing" in annotations[0]


def test_a_tiltfile_that_does_not_evaluate_still_gets_a_report(tmp_path):
    project = tmp_path / "broken"
    project.mkdir()
    (project / "Tiltfile").write_text('local_resource("a", "true")\nfail("no config for ci")\n')
    junit, report = tmp_path / "junit.xml", tmp_path / "run.json"
    result = _ci(project, "--junit-xml", str(junit), "--report-json", str(report),
                 env={"GITHUB_ACTIONS": "true"})
    assert result.returncode == 1, result.stdout + result.stderr
    cases = _cases(junit)
    assert list(cases) == ["(Tiltfile)"]
    failure = cases["(Tiltfile)"].find("failure")
    assert "no config for ci" in failure.get("message")
    assert "Tiltfile:2" in failure.text
    assert json.loads(report.read_text())["failedResource"] == "(Tiltfile)"
    assert "::error file=Tiltfile,line=2,title=devloop ci%3A (Tiltfile)::" in result.stdout
