"""Which runner runs each resource type: one registration per type.

Each runner module defines `make_runner(resource, plan, context)` (a `RunnerFactory`);
`RUNNER_MODULES` names the module of each `ResourceType`, and whether its resources deploy
to Kubernetes (the session then connects a cluster, and the scheduler holds them behind
`uncategorized`). A module is imported only when a plan first has a resource of its type:
the Kubernetes and Docker clients take a second to import and a plan of local resources
needs neither.

Adding a resource type: a `ResourceType` member (devloop/model/plan.py), a module with
its runner and `make_runner`, and its line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from devloop.engine.runner import ResourceRunner, RunnerContext, RunnerFactory, RunnerHooks
from devloop.engine.unsupported import UnsupportedRunner
from devloop.model import plan as p

if TYPE_CHECKING:
    from devloop.engine.k8s_seam import ClusterSeam



@dataclass(frozen=True)
class RunnerModule:
    module: str  # defines make_runner
    kubernetes: bool = False  # its resources deploy to the cluster


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
