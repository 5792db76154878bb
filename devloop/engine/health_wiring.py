"""Which parts a session's health monitor watches, and what it does when one returns.

Kept apart from `cluster_health` (which knows no real part) so that the monitor is tested
with fakes and this file is the one place that names the real probes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from devloop.engine.cluster_health import (
    ClusterHealth,
    Part,
    Reporter,
    Unwatchable,
    attach,
    retry_failed_updates,
)
from devloop.engine.engine import BUILD_KIND, Engine
from devloop.engine.scheduler import UpdateState
from devloop.k8s import api_health
from devloop.model import plan as p

if TYPE_CHECKING:  # only sessions with a cluster load its clients (see daemon/session.py)
    from devloop.engine.cluster import Cluster

LOG_RESOURCE = "(Tiltfile)"


def session_parts(cluster: Cluster, plan: Callable[[], p.Plan]) -> Callable[[], list[Part]]:
    """The parts to probe now: the API server, the kubelets of the nodes running the
    session's pods, and the Docker engine and registry when the plan builds images."""
    from devloop.build import reachability  # the docker client, loaded with the cluster's

    kube = cluster.kube

    def kubelet(node: str, pod: tuple[str, str, str]) -> Part:
        async def probe() -> str:
            try:
                return await api_health.kubelet_problem(kube, node, pod)
            except api_health.NotAllowed as exc:
                raise Unwatchable(str(exc)) from None

        return Part(f"kubelet-{node}", f"the kubelet of node {node}", probe)

    async def api_server() -> str:
        return await api_health.api_server_problem(kube)

    def parts() -> list[Part]:
        found = [Part("api-server", "the API server", api_server)]
        found += [kubelet(node, pod) for node, pod in sorted(kube.pods_by_node().items())]
        if any(isinstance(image, p.DockerBuild) for image in plan().images):
            found.append(Part("docker", "the Docker engine", reachability.docker_problem,
                              cluster=False))
            if cluster.push and cluster.registry is not None:
                host = cluster.registry.host

                async def registry() -> str:
                    return await reachability.registry_problem(host)

                found.append(Part("registry", f"the registry {host}", registry,
                                  cluster=False))
        return found

    return parts


def failed_at(engine: Engine, name: str) -> float | None:
    """When the resource's last update failed (epoch seconds); None if it did not."""
    if engine.view(name).update != UpdateState.ERROR:
        return None
    builds = [b for b in engine.store.list(BUILD_KIND) if b.spec.get("resource") == name]
    if not builds:
        return None
    last = max(builds, key=lambda b: float(b.status.get("startTime") or 0.0))
    return float(last.status.get("startTime") or 0.0) + float(
        last.status.get("duration") or 0.0)


def watch_session(cluster: Cluster, engine: Engine) -> ClusterHealth:
    """Start the session's health monitor: alerts in the store, lines in the Tiltfile
    log, resources woken on each change and updated again when a part returns."""

    def eligible(name: str) -> bool:
        resource = next((r for r in engine.plan.resources if r.name == name), None)
        return resource is not None and resource.type != p.ResourceType.LOCAL

    def recovered(label: str, since: float) -> None:
        names = retry_failed_updates(engine, lambda name: failed_at(engine, name), label,
                                     since, eligible=eligible)
        if names:
            engine.logs.append(LOG_RESOURCE, f"{label[0].upper()}{label[1:]} is back: "
                               f"updating again {', '.join(names)}", source="tiltfile")

    def publish(kind: str, name: str, spec: dict[str, object],
                status: dict[str, object]) -> None:
        engine.store.put(kind, name, spec=spec, status=status)

    reporter = Reporter(
        log=lambda text: engine.logs.append(LOG_RESOURCE, text, source="tiltfile"),
        publish=publish, delete=engine.store.delete, on_change=engine.wake,
        on_recovered=recovered)
    health = ClusterHealth(session_parts(cluster, lambda: engine.plan), reporter)
    attach(cluster, health)  # its resources read it (overlay_for, until_reachable)
    health.start()
    return health
