"""What a Kubernetes resource's controllers need from the cluster and the image pipeline.

`devloop.engine.cluster.Cluster` implements it over the real adapters; unit tests use
fakes of it. The deploy (`k8s_deploy`), live update (`k8s_live`) and runtime
(`k8s_monitor`, `k8s_pods`) controllers each use part of it.
"""

from __future__ import annotations

from typing import Any, Protocol

from devloop.k8s.streams import ExecResult
from devloop.model import plan as p

# The kinds whose pods a Kubernetes resource watches (and live updates).
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
                            "CronJob", "Pod"})


def workloads_of(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects among `manifests` that run pods."""
    return [m for m in manifests if m.get("kind") in WORKLOAD_KINDS]


class ClusterSeam(Protocol):
    """What a Kubernetes resource needs from the cluster and the image pipeline."""

    @property
    def namespace(self) -> str:
        """Where objects without a namespace go (the kube context's)."""
        ...

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any, *,
                           inputs: dict[str, str] | None = None) -> dict[str, str]: ...

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]: ...

    events: Any  # an EventHub: subscribe(namespace, pod, callback), unsubscribe, forget

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]: ...

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]: ...

    def watch(self, kind: str, namespace: str) -> Any: ...  # a shared WatchCache

    async def follow_logs(self, namespace: str, pod: str, container: str,
                          log: Any) -> None: ...

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult: ...

    async def extract(self, namespace: str, pod: str, container: str,
                      archive: bytes) -> ExecResult: ...

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Any) -> Any: ...
