"""Teardown goes through the runner registry: each resource type's module tears down what
its resources left behind (`devloop down`, a reload that drops a resource), a type with no
teardown leaves nothing to do, and the daemon chooses nothing by type."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from devloop.engine import runner_registry
from devloop.engine.runner_registry import TeardownContext, tear_down, tear_down_plan
from devloop.k8s.client import ObjectRef
from devloop.model import plan as p

ROOT = Path(__file__).resolve().parents[2]
OWNED = {"app.kubernetes.io/managed-by": "devloop"}


def k8s_object(kind: str, name: str, api_version: str = "v1") -> p.K8sObject:
    manifest = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
    return p.K8sObject(api_version, kind, name, "", json.dumps(manifest))


class FakeKube:
    """A cluster holding some live objects: what `get` finds and `delete` removes."""

    def __init__(self, live: dict[tuple[str, str], dict[str, str]]) -> None:
        self.live = live  # (kind, name) -> labels
        self.calls: list[tuple[str, str, str]] = []

    async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        self.calls.append(("get", ref.kind, ref.name))
        labels = self.live.get((ref.kind, ref.name))
        return None if labels is None else {"metadata": {"name": ref.name, "labels": labels}}

    async def delete(self, manifest: dict[str, Any], *, propagation: str) -> None:
        key = (manifest["kind"], manifest["metadata"]["name"])
        self.calls.append((f"delete ({propagation})", *key))
        del self.live[key]


def run(resource: p.Resource, context: TeardownContext,
        plan: p.Plan | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    said: list[str] = []
    plan = plan or p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    deleted = asyncio.run(tear_down(resource, plan, context, said.append))
    return deleted, said


def k8s_resource() -> p.Resource:
    return p.Resource(name="web", type=p.ResourceType.K8S, objects=(
        k8s_object("Namespace", "team"), k8s_object("ConfigMap", "settings"),
        k8s_object("Secret", "theirs"), k8s_object("Service", "gone"),
        k8s_object("Deployment", "web", "apps/v1")))


def test_a_kubernetes_resource_deletes_the_objects_devloop_created_last_first():
    kube = FakeKube({("Namespace", "team"): OWNED, ("ConfigMap", "settings"): OWNED,
                     ("Secret", "theirs"): {}, ("Deployment", "web"): OWNED})
    deleted, said = run(k8s_resource(), TeardownContext(kube=kube))  # type: ignore[arg-type]
    assert [m["metadata"]["name"] for m in deleted] == ["web", "settings"]
    assert said == ["Deleted Deployment/web", "Skipping Secret/theirs: not created by devloop",
                    "Deleted ConfigMap/settings",
                    "Keeping namespace team (use --delete-namespaces)"]
    assert set(kube.live) == {("Namespace", "team"), ("Secret", "theirs")}
    assert ("delete (Foreground)", "Deployment", "web") in kube.calls


def test_down_with_delete_namespaces_deletes_the_namespace_too():
    kube = FakeKube({("Namespace", "team"): OWNED})
    context = TeardownContext(kube=kube, delete_namespaces=True)  # type: ignore[arg-type]
    deleted, said = run(k8s_resource(), context)
    assert [m["kind"] for m in deleted] == ["Namespace"]
    assert said == ["Deleted Namespace/team"]
    assert kube.live == {}


def test_a_kubernetes_resource_without_a_cluster_deletes_nothing():
    assert run(k8s_resource(), TeardownContext()) == ([], [])


def test_a_custom_deploy_resource_runs_its_delete_cmd_and_touches_no_object(tmp_path):
    marker = tmp_path / "deleted"
    resource = p.Resource(name="crd", type=p.ResourceType.CUSTOM_DEPLOY,
                          delete_cmd=p.CommandSpec(
                              ("sh", "-c", f"touch {marker}; echo bye >&2"), True))
    kube = FakeKube({})
    deleted, said = run(resource, TeardownContext(kube=kube))  # type: ignore[arg-type]
    assert deleted == []
    assert marker.exists()
    assert said == [f"Running delete_cmd: touch {marker}; echo bye >&2", "bye"]
    assert kube.calls == []


@pytest.mark.parametrize("kind", [p.ResourceType.LOCAL, p.ResourceType.COMPOSE])
def test_a_type_without_a_resource_teardown_does_nothing(kind):
    kube = FakeKube({})
    resource = p.Resource(name="job", type=kind, compose_service="job")
    assert run(resource, TeardownContext(kube=kube)) == ([], [])  # type: ignore[arg-type]
    assert kube.calls == []


def test_a_plan_without_a_compose_project_has_no_plan_teardown():
    said: list[str] = []
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(k8s_resource(),))
    assert asyncio.run(tear_down_plan(plan, TeardownContext(), said.append)) is False
    assert said == []


def test_a_kind_s_teardown_is_its_module_s_found_through_its_registration(monkeypatch):
    """One module and one registration line: the registry imports the module and calls its
    `tear_down` and `tear_down_plan` with what it was given."""
    calls: list[tuple[Any, ...]] = []
    module = types.ModuleType("devloop_test_kind_runner")

    async def resource_teardown(resource, plan, context, say):
        calls.append(("tear_down", resource.name, plan.tiltfile, context.volumes))
        say("torn down")
        return [{"kind": "Thing"}]

    async def plan_teardown(plan, context, say):
        calls.append(("tear_down_plan", plan.tiltfile, context.volumes))
        return True

    module.tear_down = resource_teardown  # type: ignore[attr-defined]
    module.tear_down_plan = plan_teardown  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(runner_registry.RUNNER_MODULES, p.ResourceType.LOCAL,
                        runner_registry.RunnerModule(module.__name__))
    resource = p.Resource(name="job", type=p.ResourceType.LOCAL)
    plan = p.Plan(tiltfile="/p/Tiltfile", resources=(resource,))
    context = TeardownContext(volumes=True)
    assert run(resource, context, plan) == ([{"kind": "Thing"}], ["torn down"])
    assert asyncio.run(tear_down_plan(plan, context, print)) is True
    assert calls == [("tear_down", "job", "/p/Tiltfile", True),
                     ("tear_down_plan", "/p/Tiltfile", True)]


def test_the_daemon_chooses_nothing_by_resource_type():
    files = sorted((ROOT / "devloop" / "daemon").glob("*.py"))
    assert files
    assert [f.name for f in files if "ResourceType." in f.read_text()] == []
