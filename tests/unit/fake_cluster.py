"""One fake of the engine's cluster seam (`devloop.engine.k8s_seam.ClusterSeam`) for the unit
tests of the Kubernetes runner, with the fakes it is made of: the watch of one kind, pod
events that never come, and a recorder of the runner's hooks.

By default the fake runs one Deployment, `app` in namespace `ns`, whose single pod is
replaced by every build (`app-1`, `app-2`, ...); exec calls are recorded and answered by
`answer`. Constructor options make it run a bare Pod instead, keep its pods across builds,
know the digests of the images' inputs, or use a real event hub.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import AsyncIterator, Callable
from typing import Any

from devloop.engine.runner import RunnerHooks
from devloop.k8s.streams import ExecResult
from devloop.k8s.sync import EXTRACT_COMMAND
from devloop.model import plan as p


def succeed(argv: list[str]) -> ExecResult:
    """An exec's answer: exit code 0, no output."""
    return ExecResult(0, b"", b"")


class NoEvents:
    """Stands in for the cluster's event hub: no pod ever has an event."""

    def subscribe(self, namespace: str, pod: str, callback: Any) -> None:
        return None

    def unsubscribe(self, namespace: str, pod: str, callback: Any) -> None:
        return None

    def forget(self, namespace: str, pod: str) -> None:
        return None


class Silent:
    """A source of pod events for a real `EventHub` that never yields one."""

    async def watch_pod_events(self, namespace: str) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


class Watched:
    """The fake cluster's shared watch of one kind. The Pod watch holds the cluster's pods
    and tells its listeners of `FakeCluster.change`; a workload watch answers any name with
    that workload as read back without a status."""

    synced, error = True, ""

    def __init__(self, cluster: FakeCluster, kind: str) -> None:
        self.cluster, self.kind = cluster, kind
        self.what = f"{kind} in {cluster.namespace}"
        self.listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        self.listeners.append(callback)

    def unlisten(self, callback: Callable[[], None]) -> None:
        if callback in self.listeners:
            self.listeners.remove(callback)

    def get(self, name: str) -> dict[str, Any] | None:
        if self.kind != "Pod":
            return {"kind": self.kind,
                    "metadata": {"name": name, "namespace": self.cluster.namespace}}
        return next((pod for pod in self.cluster.pods if pod["metadata"]["name"] == name),
                    None)

    def select(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        return list(self.cluster.pods)

    def notify(self) -> None:
        for callback in list(self.listeners):
            callback()


class FakeCluster:
    """The cluster seam over one workload and its pods (`pods`).

    workload: the object `prepare` returns (default: the Deployment `app` with the built
        image of ref `app`).
    rolls_out: whether a build replaces the pods with one new pod of the new image.
    digests: the input digests of the images' refs (default none: never unchanged).
    events: the event hub (default `NoEvents`).
    """

    namespace = "ns"

    def __init__(self, *, workload: dict[str, Any] | None = None, rolls_out: bool = True,
                 pods: list[dict[str, Any]] | None = None,
                 digests: dict[str, str] | None = None, events: Any = None) -> None:
        self.workload = workload
        self.rolls_out = rolls_out
        self.pods: list[dict[str, Any]] = list(pods or [])
        self.digests: dict[str, str] = dict(digests or {})
        self.events: Any = NoEvents() if events is None else events
        self.builds = 0
        self.image = ""
        self.execs: list[tuple[str, list[str], bytes | None]] = []
        self.answer: Callable[[list[str]], ExecResult] = succeed
        self.follows: list[tuple[str, str]] = []
        self.watches: dict[str, Watched] = {}

    # The pods and their watch.

    def pod(self, name: str, restarts: int = 0) -> dict[str, Any]:
        """A running, ready pod of the Deployment `app` with the last image built."""
        return {"metadata": {"name": name, "namespace": self.namespace,
                             "labels": {"app": "app"}},
                "spec": {"containers": [{"name": "main", "image": self.image}]},
                "status": {"phase": "Running", "containerStatuses": [
                    {"name": "main", "restartCount": restarts, "state": {"running": {}},
                     "ready": True}]}}

    @property
    def watched(self) -> Watched:
        """The watch of the namespace's pods."""
        return self.watch("Pod", self.namespace)

    def change(self, *pods: dict[str, Any]) -> None:
        """The pods are now `pods`, and the pod watch says so."""
        self.pods = list(pods)
        self.watched.notify()

    # The image pipeline.

    async def input_digests(self, plan: p.Plan, refs: tuple[str, ...]) -> dict[str, str]:
        return {ref: digest for ref, digest in self.digests.items() if ref in refs}

    async def build_images(self, plan: p.Plan, refs: tuple[str, ...], log: Any, *,
                           inputs: dict[str, str] | None = None) -> dict[str, str]:
        self.builds += 1
        self.image = f"reg/app:{self.builds}"
        if self.rolls_out:
            self.pods = [self.pod(f"app-{self.builds}")]
        if inputs is not None:  # what the build read
            inputs.update(await self.input_digests(plan, refs))
        return {ref: self.image for ref in refs}

    # Deploying.

    def prepare(self, resource: p.Resource, images: dict[str, str]) -> list[dict[str, Any]]:
        if self.workload is not None:
            return [dict(self.workload)]
        return [{"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "app", "namespace": self.namespace},
                 "spec": {"selector": {"matchLabels": {"app": "app"}}, "template": {
                     "spec": {"containers": [{"name": "main", "image": images["app"]}]}}}}]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        return manifest

    async def read(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        metadata = manifest.get("metadata", {})
        return self.watch(manifest.get("kind", ""), metadata.get("namespace") or
                          self.namespace).get(metadata.get("name", ""))

    # Reading what runs.

    async def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        return self.pods

    def watch(self, kind: str, namespace: str) -> Watched:
        if kind not in self.watches:
            self.watches[kind] = Watched(self, kind)
        return self.watches[kind]

    async def follow_logs(self, namespace: str, pod: str, container: str, log: Any) -> None:
        self.follows.append((pod, container))

    async def forward(self, namespace: str, pod: str, forward: p.PortForward,
                      on_error: Any) -> Any:
        raise AssertionError("no port-forwards in this test")

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult:
        self.execs.append((pod, argv, stdin))
        return self.answer(argv)

    async def extract(self, namespace: str, pod: str, container: str,
                      archive: bytes) -> ExecResult:
        return await self.exec(namespace, pod, container, list(EXTRACT_COMMAND), archive)

    def extracted(self) -> list[tuple[str, list[str]]]:
        """For each tar stream sent, in order: the pod, and the names of its files."""
        found = []
        for pod, argv, stdin in self.execs:
            if argv[0] == "tar" and stdin is not None:
                with tarfile.open(fileobj=io.BytesIO(stdin)) as tar:
                    found.append((pod, [m.name for m in tar.getmembers() if m.isfile()]))
        return found

    def archives(self) -> list[list[str]]:
        """The names of the files in each tar stream sent, in order."""
        return [names for _, names in self.extracted()]


class Recorder:
    """The runner's hooks, recorded: log lines, the objects published (until deleted), and
    the alerts (those still up, and every message ever raised)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.objects: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {}
        self.alerts: dict[str, str] = {}
        self.alerted: list[str] = []

    def hooks(self) -> RunnerHooks:
        def log(resource: str, text: str, source: str, prefix: str) -> None:
            self.lines.append(text)

        def publish(kind: str, name: str, spec: dict[str, Any],
                    status: dict[str, Any]) -> None:
            self.objects[(kind, name)] = (spec, status)
            if kind == "alert":
                self.alerts[name] = status["message"]
                self.alerted.append(status["message"])

        def delete(kind: str, name: str) -> None:
            self.objects.pop((kind, name), None)
            if kind == "alert":
                self.alerts.pop(name, None)

        return RunnerHooks(log=log, changed=lambda: None, publish=publish, delete=delete)

    def live_updates(self) -> list[dict[str, Any]]:
        """The status of each live update object published, in order of first publish."""
        return [status for (kind, _), (_, status) in self.objects.items()
                if kind == "liveupdate"]
