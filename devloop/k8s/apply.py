"""Applying many objects at once: in dependency order by kind, concurrently within a step.

One server-side apply is one HTTP round trip (tens of ms on a local cluster, more on a
remote one), so a `k8s_yaml` of 100 objects applied one after another waits on 100 round
trips. Objects are applied in steps instead: what others need to exist first (Namespaces,
CustomResourceDefinitions), then what workloads refer to (ServiceAccounts, ConfigMaps,
Secrets, RBAC, storage), then the rest (Services, workloads, custom resources), then what
intercepts requests (webhooks, APIServices), the order kubectl and Helm install in. Within
a step, up to `concurrency` applies are in flight.

A failure stops at the end of its step: the step's other applies finish (they were sent),
later steps do not start, and the first failing object (in the given order) is raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Manifest = dict[str, Any]
ApplyFn = Callable[[Manifest], Awaitable[Manifest]]

# Applies in flight at once. The API server handles each in a few ms; 8 keeps a 2-core
# machine's client threads and the API server busy without queueing much on either side
# (the kubernetes client's connection pool holds 5 per core). A round figure.
DEFAULT_CONCURRENCY = 8

# The steps, by kind (Helm's InstallOrder, grouped): each step is applied once the one
# before has been, so an object finds what it refers to.
STEPS: tuple[frozenset[str], ...] = (
    frozenset({"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
               "PodSecurityPolicy", "PodDisruptionBudget", "PriorityClass",
               "CustomResourceDefinition"}),
    frozenset({"ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
               "PersistentVolume", "PersistentVolumeClaim", "ClusterRole", "ClusterRoleList",
               "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList",
               "RoleBinding", "RoleBindingList", "IngressClass", "RuntimeClass"}),
)
LAST_STEP = frozenset({"APIService", "MutatingWebhookConfiguration",
                       "ValidatingWebhookConfiguration"})


def step_of(manifest: Manifest) -> int:
    """The step a manifest is applied in: 0 and 1 as `STEPS`, 2 for everything else, 3 for
    `LAST_STEP`."""
    kind = str(manifest.get("kind", ""))
    for index, kinds in enumerate(STEPS):
        if kind in kinds:
            return index
    return len(STEPS) + 1 if kind in LAST_STEP else len(STEPS)


def steps(manifests: Sequence[Manifest]) -> list[list[int]]:
    """Indexes of `manifests` per step, in order, each step in the given order."""
    by_step: dict[int, list[int]] = {}
    for index, manifest in enumerate(manifests):
        by_step.setdefault(step_of(manifest), []).append(index)
    return [by_step[step] for step in sorted(by_step)]


async def apply_all(apply: ApplyFn, manifests: Sequence[Manifest], *,
                    concurrency: int = DEFAULT_CONCURRENCY,
                    on_applied: Callable[[Manifest], None] | None = None) -> list[Manifest]:
    """Apply every manifest (see the module docstring); returns what the server returned
    for each, in the given order. `on_applied` is called with each manifest once applied."""
    results: list[Manifest | None] = [None] * len(manifests)
    slots = asyncio.Semaphore(max(1, concurrency))

    async def one(index: int) -> None:
        async with slots:
            results[index] = await apply(manifests[index])
        if on_applied is not None:
            on_applied(manifests[index])

    for indexes in steps(manifests):
        outcomes = await asyncio.gather(*(one(index) for index in indexes),
                                        return_exceptions=True)
        for outcome in outcomes:  # the first failure in the given order
            if isinstance(outcome, BaseException):
                raise outcome
    return [result if result is not None else {} for result in results]
