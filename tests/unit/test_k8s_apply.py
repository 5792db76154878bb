"""apply_all: objects applied in kind order, concurrently within a step, bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devloop.k8s.apply import apply_all, step_of


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}}


class FakeApiServer:
    """Answers each apply after `delay` seconds, records order and concurrency, and refuses
    the names in `refuse`."""

    def __init__(self, delay: float = 0.01, refuse: frozenset[str] = frozenset()) -> None:
        self.delay, self.refuse = delay, refuse
        self.started: list[str] = []
        self.finished: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self.started.append(name)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if name in self.refuse:
                raise RuntimeError(f"{name} refused")
        finally:
            self.in_flight -= 1
        self.finished.append(name)
        return {**manifest, "status": {"applied": name}}


@pytest.mark.parametrize(("kind", "step"), [
    ("Namespace", 0), ("CustomResourceDefinition", 0), ("ConfigMap", 1), ("Secret", 1),
    ("ServiceAccount", 1), ("ClusterRoleBinding", 1), ("Deployment", 2), ("Service", 2),
    ("Widget", 2), ("ValidatingWebhookConfiguration", 3), ("APIService", 3),
])
def test_each_kind_has_its_step(kind, step):
    assert step_of(obj(kind, "x")) == step


def test_namespaces_and_config_are_applied_before_what_uses_them_and_results_keep_order():
    server = FakeApiServer()
    manifests = [obj("Deployment", "web"), obj("ConfigMap", "config"),
                 obj("Namespace", "ns"), obj("Service", "web-svc"),
                 obj("ValidatingWebhookConfiguration", "hook")]
    applied: list[str] = []
    results = asyncio.run(apply_all(server.apply, manifests,
                                    on_applied=lambda m: applied.append(m["metadata"]["name"])))
    assert [r["status"]["applied"] for r in results] == ["web", "config", "ns", "web-svc",
                                                          "hook"]
    assert server.started[:2] == ["ns", "config"]
    assert set(server.started[2:4]) == {"web", "web-svc"} and server.started[4] == "hook"
    assert sorted(applied) == sorted(r["metadata"]["name"] for r in manifests)


def test_a_hundred_objects_are_applied_concurrently_but_never_more_than_the_bound():
    server = FakeApiServer(delay=0.02)
    manifests = [obj("ConfigMap", f"c{index}") for index in range(100)]

    async def run() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await apply_all(server.apply, manifests, concurrency=8)
        return loop.time() - started

    elapsed = asyncio.run(run())
    assert server.most_in_flight == 8
    assert sorted(server.finished) == sorted(f"c{index}" for index in range(100))
    assert elapsed < 100 * 0.02 / 2  # far from one round trip after another


def test_a_failure_lets_its_step_finish_and_stops_later_steps():
    server = FakeApiServer(refuse=frozenset({"bad"}))
    manifests = [obj("ConfigMap", "good"), obj("ConfigMap", "bad"), obj("Secret", "other"),
                 obj("Deployment", "web")]
    with pytest.raises(RuntimeError, match="bad refused"):
        asyncio.run(apply_all(server.apply, manifests))
    assert sorted(server.finished) == ["good", "other"]
    assert "web" not in server.started
