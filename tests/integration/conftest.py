"""Fixtures for integration tests that run against the real test environment.

`scripts/testenv up` starts a Docker engine, a registry on localhost:5000 and a single-node
Kubernetes cluster (see that script). It is idempotent and takes seconds when everything already
runs, so the session fixture simply calls it. When the environment cannot start, the tests fail:
a skipped integration suite would look green while testing nothing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTENV_SCRIPT = REPO_ROOT / "scripts" / "testenv"

# A cold `up` builds Kubernetes from source and the base images; this bound only exists so
# that a hung start fails the session instead of blocking it forever.
UP_TIMEOUT_SECONDS = 3 * 60 * 60
NAMESPACE_READY_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class K8sTestEnv:
    """What a test needs to reach the environment started by `scripts/testenv up`."""

    kubeconfig: Path
    registry: str
    env: Mapping[str, str]

    def api_client(self) -> client.ApiClient:
        """A new Kubernetes API client for the test cluster (one per caller: not shared)."""
        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def subprocess_env(self) -> dict[str, str]:
        """os.environ plus the environment's variables, for kubectl and other child processes."""
        return {**os.environ, **self.env}


def _run_testenv(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [str(TESTENV_SCRIPT), command],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"scripts/testenv {command} could not run: {exc}", pytrace=False)


def _parse_exports(output: str) -> dict[str, str]:
    """Turn `export NAME=value` lines (the output of `scripts/testenv env`) into a dict."""
    variables: dict[str, str] = {}
    for line in output.splitlines():
        words = shlex.split(line)
        if len(words) != 2 or words[0] != "export" or "=" not in words[1]:
            continue
        name, value = words[1].split("=", 1)
        # Values may refer to the current environment, e.g. PATH=...:$PATH.
        variables[name] = os.path.expandvars(value)
    return variables


@pytest.fixture(scope="session")
def testenv() -> Iterator[K8sTestEnv]:
    up = _run_testenv("up", UP_TIMEOUT_SECONDS)
    if up.returncode != 0:
        pytest.fail(
            f"scripts/testenv up failed (exit {up.returncode}):\n{up.stdout}\n{up.stderr}",
            pytrace=False,
        )
    exports = _run_testenv("env", 60)
    if exports.returncode != 0:
        pytest.fail(f"scripts/testenv env failed:\n{exports.stderr}", pytrace=False)
    variables = _parse_exports(exports.stdout)
    if "KUBECONFIG" not in variables:
        pytest.fail(f"scripts/testenv env printed no KUBECONFIG:\n{exports.stdout}", pytrace=False)
    env = K8sTestEnv(
        kubeconfig=Path(variables["KUBECONFIG"]),
        registry=variables.get("DEVLOOP_TEST_REGISTRY", "localhost:5000"),
        env=MappingProxyType(variables),
    )
    # Code under test and the tools it starts (kubectl, docker) find the cluster the usual way.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        yield env


def _wait_for_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    # Pods are rejected until the service account controller has created `default`.
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_SECONDS
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        if time.monotonic() > deadline:
            pytest.fail(f"no default service account in namespace {namespace}", pytrace=False)
        time.sleep(0.2)


@pytest.fixture
def k8s_namespace(testenv: K8sTestEnv) -> Iterator[str]:
    """A fresh namespace for one test, deleted (with everything in it) afterwards."""
    name = f"devloop-test-{uuid.uuid4().hex[:10]}"
    with testenv.api_client() as api:
        core = client.CoreV1Api(api)
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(name=name, labels={"devloop.test/owner": "pytest"})
            )
        )
        try:
            _wait_for_default_service_account(core, name)
            yield name
        finally:
            try:
                core.delete_namespace(name, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise
