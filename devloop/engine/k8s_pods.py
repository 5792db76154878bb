"""The streams of a Kubernetes resource's pods: each container's logs, each pod's events.

Every container instance's log is followed once (each line once, across restarts,
reconnects and reloads: the cluster's cursor skips what was shown); each pod's events are
logged as they come and kept, for the resource's details and for its alerts (see
`K8sMonitor`). A pod that is gone takes its events with it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from devloop.engine.k8s_seam import ClusterSeam
from devloop.engine.tasks import Reporter, cancel_and_wait, spawn
from devloop.k8s.events import PodEventRecord


class PodStreams:
    def __init__(self, resource: str, *, cluster: ClusterSeam,
                 log: Callable[[str, str], None], wake: Callable[[], None],
                 on_error: Reporter | None = None) -> None:
        """`log(text, prefix)` writes a runtime line of the resource; `wake` asks the
        monitor to read the pods again (a warning event may be an alert); `on_error`
        reports a log stream that failed."""
        self.resource = resource
        self._on_error = on_error
        self.cluster = cluster
        self._log = log
        self._wake = wake
        self._log_tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        # Which container instance (restart count) each log task follows.
        self._followed: dict[tuple[str, str], int] = {}
        self._subscribed: dict[str, str] = {}  # pod -> namespace, for its events
        self._events: dict[str, list[PodEventRecord]] = {}  # pod -> its events, in order

    def follow(self, namespace: str, pod: dict[str, Any]) -> None:
        """Follow the logs of each container of `pod` not followed yet (again for a new
        instance, or a running one whose stream ended), and watch the pod's events."""
        name = pod.get("metadata", {}).get("name", "")
        self._watch_events(namespace, name)
        if pod.get("status", {}).get("phase") == "Pending" and not pod.get("status", {}).get(
                "containerStatuses"):
            return
        statuses = {cs.get("name"): cs for cs in pod.get("status", {}).get(
            "containerStatuses") or []}
        for container in pod.get("spec", {}).get("containers", []):
            key = (name, container["name"])
            task = self._log_tasks.get(key)
            status = statuses.get(container["name"]) or {}
            restarts = int(status.get("restartCount") or 0)
            running = "running" in (status.get("state") or {})
            # A stream ends with its container; follow again only a new instance or a
            # running one (the cluster's cursor skips whatever was shown already).
            if task is None or task.done() and (running or restarts != self._followed.get(key)):
                self._followed[key] = restarts
                prefix = f"{name}:{container['name']}" if len(
                    pod["spec"]["containers"]) > 1 else name
                self._log_tasks[key] = spawn(
                    self.cluster.follow_logs(namespace, name, container["name"],
                                             functools.partial(_with_prefix, self._log,
                                                               prefix)),
                    name=f"logs:{self.resource}:{name}:{container['name']}",
                    resource=self.resource, on_error=self._on_error)

    def _watch_events(self, namespace: str, pod: str) -> None:
        if pod not in self._subscribed:
            self._subscribed[pod] = namespace
            self.cluster.events.subscribe(namespace, pod, self._on_event)

    def _on_event(self, event: PodEventRecord, fresh: bool) -> None:
        self._events.setdefault(event.pod, []).append(event)
        if fresh:
            self._log(event.line(), "")  # the line names its pod
        if event.warning or container_started(event):
            # Alerts are assessed with the pods: read again (nothing else may change now).
            # A container's start is said by its event before the pod's status says it.
            self._wake()

    def started(self, pod: dict[str, Any]) -> bool:
        """Has one of the pod's (not init) containers started, by the pod's events? The
        kubelet posts the `Started` event as it starts the container, and puts it in the
        pod's status only after its next look at the runtime (up to a second later on
        this cluster), so a port-forward opened on the event is there that much sooner."""
        name = pod.get("metadata", {}).get("name", "")
        containers = {c.get("name") for c in pod.get("spec", {}).get("containers", [])}
        return any(container_started(event) in containers
                   for event in self._events.get(name, []))

    def events_of(self, pod: str) -> list[PodEventRecord]:
        return self._events.get(pod, [])

    def facets(self) -> list[dict[str, object]]:
        """Every kept event, as the resource's details show them."""
        return [e.as_facet() for events in self._events.values() for e in events]

    def forget(self, present: set[str]) -> None:
        """Pods that are gone take their events with them."""
        for pod in [name for name in self._subscribed if name not in present]:
            self.cluster.events.forget(self._subscribed.pop(pod), pod)
            self._events.pop(pod, None)
        for key in [k for k in self._followed if k[0] not in present]:
            del self._followed[key]

    async def stop(self) -> None:
        await cancel_and_wait(*self._log_tasks.values())
        for pod, namespace in self._subscribed.items():
            self.cluster.events.unsubscribe(namespace, pod, self._on_event)
        self._subscribed.clear()


def container_started(event: PodEventRecord) -> str:
    """The container a kubelet's `Started` event is about ('' for any other event)."""
    if event.reason != "Started" or event.warning:
        return ""
    return event.message.removeprefix("Started container ").strip()


def _with_prefix(log: Callable[[str, str], None], prefix: str, text: str) -> None:
    log(text, prefix)
