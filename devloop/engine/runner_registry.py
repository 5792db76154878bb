"""Which runner runs each resource type: one registration per type.

Each runner module defines `make_runner(resource, plan, context)` (a `RunnerFactory`);
`RUNNER_MODULES` names the module of each `ResourceType`, and whether its resources deploy
to Kubernetes (the session then connects a cluster, and the scheduler holds them behind
`uncategorized`). A module is imported only when a plan first has a resource of its type:
the Kubernetes and Docker clients take a second to import and a plan of local resources
needs neither.

A module may also define how its resources are torn down when `devloop down` runs or a
reload drops them: `tear_down(resource, plan, context, say)` for one resource (it returns
the manifests of the objects it deleted, which `down` waits for), and
`tear_down_plan(plan, context, say)` for what the plan holds as a whole (Compose's project;
it returns whether it tore anything down). A type whose module defines neither leaves
nothing behind (a local resource).

Adding a resource type: a `ResourceType` member (devloop/model/plan.py), a module with
its runner, `make_runner` and its teardown, and its line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from devloop.engine.runner import ResourceRunner, RunnerContext, RunnerFactory, RunnerHooks
from devloop.engine.unsupported import UnsupportedRunner
from devloop.model import plan as p

if TYPE_CHECKING:
    from devloop.engine.k8s_seam import ClusterSeam
    from devloop.k8s.client import KubeClient


@dataclass(frozen=True)
class RunnerModule:
    module: str  # defines make_runner, and tear_down / tear_down_plan if it has any
    kubernetes: bool = False  # its resources deploy to the cluster


@dataclass(frozen=True)
class TeardownContext:
    """What a teardown may use: the cluster's client (None when none is connected, and
    always for `tear_down_plan`, which `down` runs before it connects one) and the options
    of `devloop down`."""

    kube: KubeClient | None = None
    delete_namespaces: bool = False
    volumes: bool = False


class ResourceTeardown(Protocol):
    def __call__(self, resource: p.Resource, plan: p.Plan, context: TeardownContext,
                 say: Callable[[str], None]) -> Awaitable[list[dict[str, Any]]]: ...


class PlanTeardown(Protocol):
    def __call__(self, plan: p.Plan, context: TeardownContext,
                 say: Callable[[str], None]) -> Awaitable[bool]: ...


RUNNER_MODULES: dict[p.ResourceType, RunnerModule] = {
    p.ResourceType.LOCAL: RunnerModule("devloop.engine.local_runner"),
    p.ResourceType.K8S: RunnerModule("devloop.engine.k8s_runner", kubernetes=True),
    p.ResourceType.CUSTOM_DEPLOY: RunnerModule("devloop.engine.custom_deploy_runner",
                                               kubernetes=True),
    p.ResourceType.COMPOSE: RunnerModule("devloop.engine.compose_runner"),
}

_factories: dict[p.ResourceType, RunnerFactory] = {}


def register(kind: p.ResourceType, factory: RunnerFactory) -> None:
    """Run resources of `kind` with `factory` (instead of its module's `make_runner`)."""
    _factories[kind] = factory


def factory_for(kind: p.ResourceType) -> RunnerFactory | None:
    """The factory of `kind`'s runners, importing its module the first time."""
    factory = _factories.get(kind)
    if factory is None and kind in RUNNER_MODULES:
        module = importlib.import_module(RUNNER_MODULES[kind].module)
        made: RunnerFactory = module.make_runner
        factory = _factories[kind] = made
    return factory


def _module(kind: p.ResourceType) -> ModuleType | None:
    registered = RUNNER_MODULES.get(kind)
    return None if registered is None else importlib.import_module(registered.module)


async def tear_down(resource: p.Resource, plan: p.Plan, context: TeardownContext,
                    say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Tear down what `resource` deployed, with its module's `tear_down` (nothing if it has
    none); the manifests of the objects it deleted."""
    teardown: ResourceTeardown | None = getattr(_module(resource.type), "tear_down", None)
    if teardown is None:
        return []
    return await teardown(resource, plan, context, say)


async def tear_down_plan(plan: p.Plan, context: TeardownContext,
                         say: Callable[[str], None]) -> bool:
    """Run the `tear_down_plan` of each registered module that runs some resource of
    `plan`, in registration order: whether any tore something down. (Modules of types the
    plan lacks are not imported: the Docker client alone takes a fraction of a second.)"""
    torn_down = False
    present = {resource.type for resource in plan.resources}
    for kind in (kind for kind in RUNNER_MODULES if kind in present):
        teardown: PlanTeardown | None = getattr(_module(kind), "tear_down_plan", None)
        if teardown is not None and await teardown(plan, context, say):
            torn_down = True
    return torn_down


def deploys_to_kubernetes(kind: p.ResourceType) -> bool:
    registered = RUNNER_MODULES.get(kind)
    return registered is not None and registered.kubernetes


def needs_cluster(plan: p.Plan) -> bool:
    """Whether a session of `plan` connects to a cluster."""
    return any(deploys_to_kubernetes(resource.type) for resource in plan.resources)


def make_runner(resource: p.Resource, plan: p.Plan, context: RunnerContext) -> ResourceRunner:
    factory = factory_for(resource.type)
    if factory is None:
        return UnsupportedRunner(resource)
    return factory(resource, plan, context)


def make_runner_factory(hooks: RunnerHooks, cluster: ClusterSeam | None = None
                        ) -> Callable[[p.Resource, p.Plan], ResourceRunner]:
    """The engine's runner factory for a session: runners are made for a resource of a
    given plan, and a reload makes new ones."""
    context = RunnerContext(hooks, cluster)

    def factory(resource: p.Resource, plan: p.Plan) -> ResourceRunner:
        return make_runner(resource, plan, context)

    return factory
