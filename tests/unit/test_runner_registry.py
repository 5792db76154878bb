"""The runner registry: every resource type has a runner, made by its module's factory."""

from __future__ import annotations

import asyncio

import pytest

from devloop.engine import runner_registry
from devloop.engine.compose_runner import ComposeRunner
from devloop.engine.k8s_runner import K8sRunner
from devloop.engine.local_runner import LocalRunner
from devloop.engine.runner import RunnerContext, RunnerHooks, UpdateError
from devloop.engine.unsupported import UnsupportedRunner
from devloop.model import plan as p

HOOKS = RunnerHooks(log=lambda *args: None, changed=lambda: None)


class NoCluster:
    """Enough of the cluster seam to construct Kubernetes runners (none runs here)."""

    namespace = "ns"
    events = None

    async def forward(self, *args: object) -> object:
        raise AssertionError("not forwarding")


def test_every_resource_type_has_a_registered_runner_module():
    assert set(runner_registry.RUNNER_MODULES) == set(p.ResourceType)
    assert {kind for kind in p.ResourceType if runner_registry.deploys_to_kubernetes(kind)} == {
        p.ResourceType.K8S, p.ResourceType.CUSTOM_DEPLOY}
    for kind in p.ResourceType:
        assert callable(runner_registry.factory_for(kind))


@pytest.mark.parametrize("kind, expected", [
    (p.ResourceType.LOCAL, LocalRunner),
    (p.ResourceType.K8S, K8sRunner),
    (p.ResourceType.CUSTOM_DEPLOY, K8sRunner),
])
def test_the_session_factory_makes_each_type_s_runner(kind, expected):
    resource = p.Resource(name="r", type=kind)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    make = runner_registry.make_runner_factory(HOOKS, NoCluster())  # type: ignore[arg-type]
    assert type(make(resource, plan)) is expected


def test_a_compose_service_runs_with_the_project_s_backend():
    project = p.ComposeProject(config_paths=("/p/compose.yaml",), project_name="p",
                               services_json='{"web": {}}')
    resource = p.Resource(name="web", type=p.ResourceType.COMPOSE, compose_service="web")
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,), compose=project)
    runner = runner_registry.make_runner_factory(HOOKS)(resource, plan)
    assert isinstance(runner, ComposeRunner)
    assert runner.backend.project == project


def test_a_kubernetes_resource_without_a_cluster_fails_its_updates_saying_why():
    resource = p.Resource(name="web", type=p.ResourceType.K8S)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    runner = runner_registry.make_runner_factory(HOOKS, None)(resource, plan)
    assert isinstance(runner, UnsupportedRunner)
    with pytest.raises(UpdateError, match="no Kubernetes cluster"):
        asyncio.run(runner.update(()))


def test_a_registered_factory_replaces_the_module_s(monkeypatch):
    monkeypatch.setattr(runner_registry, "_factories", {})
    made: list[str] = []

    def factory(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> UnsupportedRunner:
        made.append(resource.name)
        return UnsupportedRunner(resource, "made by the test")

    runner_registry.register(p.ResourceType.LOCAL, factory)
    resource = p.Resource(name="job", type=p.ResourceType.LOCAL)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    runner = runner_registry.make_runner_factory(HOOKS)(resource, plan)
    assert made == ["job"]
    assert isinstance(runner, UnsupportedRunner) and runner.reason == "made by the test"
