"""The async seam over blocking Kubernetes requests: apply, delete, list, pods, logs, exec.

Every request runs in a worker thread (`asyncio.to_thread`); long-lived streams (pod watches,
followed logs) each get one thread that hands items to the event loop with
`call_soon_threadsafe` into an unbounded queue and stops when its Event is set (the blocked
read is unblocked by shutting the socket down). Objects travel as plain JSON dicts, exactly
as the API server returns them, so a fake can round-trip them the same way.

Requests go through devloop's own small transport (`transport.py`, on urllib3, configured by
`kubeconfig.py`) with our own paths (resources are found through API discovery), which keeps
one code path for every kind, including CRDs created a moment ago. The `kubernetes` package
is not used: it cost the daemon about 14 MiB and a tenth of a second to import, for a
kubeconfig loader and an HTTP call.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3

from devloop.k8s import kubeconfig as kc
from devloop.k8s.errors import KubeError, UnknownKindError, error_from_status
from devloop.k8s.portforward import PortForwarder
from devloop.k8s.standby import StandbyCommands
from devloop.k8s.streams import (
    WATCH_TIMEOUT_SECS,
    ExecResult,
    KindWatcher,
    LogCursor,
    LogFollower,
    LogLine,
    PodEvent,
    PodEventsWatcher,
    PodWatcher,
    WatchCache,
    exec_blocking,
    thread_stream,
)
from devloop.k8s.sync import EXTRACT_COMMAND
from devloop.k8s.transport import REQUEST_TIMEOUT, Timeout, Transport

_T = TypeVar("_T")

MANAGER = "devloop"

# (apiVersion, kind) that `list_by_label` looks at by default: what Tiltfiles deploy.
DEFAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"), ("batch/v1", "CronJob"),
    ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"), ("networking.k8s.io/v1", "Ingress"),
    ("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("v1", "Namespace"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
)

# The kinds `watch_cache` watches, with their API group's path: the workloads a resource
# reads its health from, and their pods.
WATCHED_KINDS = {"Deployment": "/apis/apps/v1", "StatefulSet": "/apis/apps/v1",
                 "DaemonSet": "/apis/apps/v1", "ReplicaSet": "/apis/apps/v1",
                 "Job": "/apis/batch/v1", "CronJob": "/apis/batch/v1", "Pod": "/api/v1"}

@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    name: str
    namespace: str = ""

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("apiVersion", "")), str(obj.get("kind", "")),
                   str(meta.get("name", "")), str(meta.get("namespace") or ""))

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class ApiResource:
    """Where a kind lives in the API, from discovery."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str = "", name: str = "") -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


class KubeClient:
    """Async Kubernetes operations for the engine. Create with `await KubeClient.create()`."""

    def __init__(self, configuration: kc.KubeConfig, *,
                 context: str = "", namespace: str = "default") -> None:
        # The context's settings; `configuration.host` is the API server's URL (requests
        # read it each time, so it may be pointed elsewhere).
        self.configuration = configuration
        self.context = context
        self.namespace = namespace
        self.transport = Transport(configuration)
        self._resources: dict[str, list[ApiResource]] = {}
        self._lock = threading.Lock()
        self._caches: dict[tuple[str, str], WatchCache] = {}
        # Live update's `tar -x`, started ahead in each container it synced into.
        self._extractors = StandbyCommands(self, EXTRACT_COMMAND)
        # Server-side length of each watch request of the shared caches; tests shorten it
        # (DEVLOOP_WATCH_TIMEOUT_SECONDS) to see the runtime outlive watches the API
        # server ends.
        self.watch_timeout = int(os.environ.get("DEVLOOP_WATCH_TIMEOUT_SECONDS")
                                 or WATCH_TIMEOUT_SECS)

    @classmethod
    async def create(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeClient:
        """Load a kubeconfig (KUBECONFIG or ~/.kube/config when `kubeconfig` is None)."""
        return await asyncio.to_thread(cls._create_blocking, kubeconfig, context)

    @classmethod
    def _create_blocking(cls, kubeconfig: str | None, context: str | None) -> KubeClient:
        config = kc.load(kubeconfig, context)  # KubeError naming the file and context
        return cls(config, context=config.context, namespace=config.namespace)

    def close(self) -> None:
        self._extractors.close()
        for cache in self._caches.values():
            cache.cancel()
        self._caches.clear()
        self.transport.close()

    # ------------------------------------------------------------------ raw requests

    def request(self, method: str, path: str, *, query: Iterable[tuple[str, Any]] = (),
                body: Any = None, content_type: str = "", what: str = "",
                stream: bool = False, timeout: Timeout = REQUEST_TIMEOUT) -> Any:
        """One API request (blocking). Returns parsed JSON, or the raw urllib3 response
        when `stream`; raises KubeError naming `what`."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            resp = self.transport.request(method, path, query=query, body=body,
                                          headers=headers, timeout=timeout)
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"{what or path}: cannot reach the API server: {e}",
                            temporary=True) from e
        if not 200 <= resp.status <= 299:
            try:
                data = resp.read()
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            finally:
                resp.release_conn()
            raise error_from_status(resp.status, data.decode(errors="replace"), what)
        if stream:
            return resp
        try:
            data = resp.read()
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise KubeError(f"{what or path}: connection lost: {e}", temporary=True) from e
        finally:
            resp.release_conn()
        return json.loads(data) if data else None

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # ------------------------------------------------------------------ discovery

    def resource_for(self, api_version: str, kind: str) -> ApiResource:
        """Discovery lookup (blocking), refreshed once on a miss so new CRDs are found."""
        for refresh in (False, True):
            for res in self._group_version(api_version, refresh):
                if res.kind == kind:
                    return res
        raise UnknownKindError(f"the server has no kind {kind!r} in {api_version!r} (is its CRD "
                        "installed?)")

    def _group_version(self, api_version: str, refresh: bool) -> list[ApiResource]:
        with self._lock:
            cached = self._resources.get(api_version)
        if cached is not None and not refresh:
            return cached
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            data = self.request("GET", path, what=f"discovery of {api_version}")
        except KubeError as e:
            if e.status == 404:
                data = {"resources": []}
            else:
                raise
        found = [
            ApiResource(api_version, r["kind"], r["name"], bool(r.get("namespaced")))
            for r in data.get("resources", []) if "/" not in r["name"]
        ]
        with self._lock:
            self._resources[api_version] = found
        return found

    # ------------------------------------------------------------------ objects

    async def server_side_apply(self, obj: dict[str, Any], field_manager: str = MANAGER,
                                ) -> dict[str, Any]:
        """Server-side apply of any kind, forcing ownership of conflicting fields (as
        `kubectl apply --server-side --force-conflicts`). Returns the object as applied."""
        return await self._call(self._apply_blocking, obj, field_manager)

    def _apply_blocking(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        ref = ObjectRef.of(obj)
        if not ref.api_version or not ref.kind or not ref.name:
            raise KubeError(f"cannot apply an object without apiVersion, kind and name: {ref}")
        res = self.resource_for(ref.api_version, ref.kind)
        body = obj
        namespace = ref.namespace
        if res.namespaced and not namespace:
            namespace = self.namespace
            body = {**obj, "metadata": {**obj.get("metadata", {}), "namespace": namespace}}
        what = str(ObjectRef(ref.api_version, ref.kind, ref.name,
                             namespace if res.namespaced else ""))
        result: dict[str, Any] = self.request(
            "PATCH", res.path(namespace, ref.name),
            query=[("fieldManager", field_manager), ("force", "true")],
            body=body, content_type="application/apply-patch+yaml", what=what)
        return result

    async def delete(self, obj_ref: ObjectRef | dict[str, Any], *,
                     propagation: str = "Background") -> bool:
        """Delete one object; False when it was already gone."""
        ref = obj_ref if isinstance(obj_ref, ObjectRef) else ObjectRef.of(obj_ref)
        return bool(await self._call(self._delete_blocking, ref, propagation))

    def _delete_blocking(self, ref: ObjectRef, propagation: str) -> bool:
        res = self.resource_for(ref.api_version, ref.kind)
        namespace = (ref.namespace or self.namespace) if res.namespaced else ""
        try:
            self.request("DELETE", res.path(namespace, ref.name),
                         query=[("propagationPolicy", propagation)], what=str(ref))
        except KubeError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def get(self, obj_ref: ObjectRef) -> dict[str, Any] | None:
        return await self._call(self._get_blocking, obj_ref)

    def _get_blocking(self, ref: ObjectRef) -> dict[str, Any] | None:
        res = self.resource_for(ref.api_version, ref.kind)
        namespace = (ref.namespace or self.namespace) if res.namespaced else ""
        try:
            found: dict[str, Any] = self.request("GET", res.path(namespace, ref.name),
                                                 what=str(ref))
            return found
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    async def list_by_label(self, label_selector: str,
                            kinds: Iterable[tuple[str, str]] = DEFAULT_KINDS, *,
                            namespace: str = "") -> list[dict[str, Any]]:
        """Objects of the given kinds (all namespaces unless `namespace`) matching the
        selector, each with apiVersion and kind filled in. Kinds the server lacks are skipped."""
        return await self._call(self._list_blocking, label_selector, tuple(kinds), namespace)

    def _list_blocking(self, selector: str, kinds: tuple[tuple[str, str], ...],
                       namespace: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for api_version, kind in kinds:
            try:
                res = self.resource_for(api_version, kind)
            except UnknownKindError:
                continue  # not served by this cluster
            data = self.request("GET", res.path(namespace), what=f"list {res.plural}",
                                query=[("labelSelector", selector)])
            for item in data.get("items", []):
                out.append({"apiVersion": api_version, "kind": kind, **item})
        return out

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get(ObjectRef("v1", "ConfigMap", name, namespace))

    async def list_pods(self, namespace: str, label_selector: str = "") -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            query = [("labelSelector", label_selector)] if label_selector else []
            data = self.request("GET", f"/api/v1/namespaces/{namespace}/pods", query=query,
                                what=f"pods in {namespace}")
            return list(data.get("items", []))

        return await self._call(run)

    async def events_for(self, namespace: str, involved_name: str) -> list[dict[str, Any]]:
        """Events about an object (by name), oldest first."""

        def run() -> list[dict[str, Any]]:
            data = self.request(
                "GET", f"/api/v1/namespaces/{namespace}/events",
                query=[("fieldSelector", f"involvedObject.name={involved_name}")],
                what=f"events of {namespace}/{involved_name}")
            items = list(data.get("items", []))
            items.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
            return items

        return await self._call(run)

    # ------------------------------------------------------------------ streams

    def watch_pods(self, namespace: str, label_selector: str = "") -> AsyncIterator[PodEvent]:
        """Pod events: first ADDED for each existing pod, then changes. Survives watch
        timeouts and expired resource versions (re-lists, emitting DELETED for pods that
        vanished meanwhile). Stop by leaving the `async for` (or `aclose()`)."""
        watcher = PodWatcher(self, namespace, label_selector)
        return thread_stream(watcher, f"watch pods {namespace} {label_selector}")

    def watch_cache(self, kind: str, namespace: str) -> WatchCache:
        """The session's one watch of a workload kind (or Pod) in `namespace`, shared by
        every resource; see `WatchCache`."""
        key = (kind, namespace)
        cache = self._caches.get(key)
        if cache is None:
            path = f"{WATCHED_KINDS[kind]}/namespaces/{namespace}/{kind.lower()}s"
            what = f"{kind.lower()}s in {namespace}"
            timeout = self.watch_timeout
            cache = WatchCache(lambda: KindWatcher(self, path, what, watch_timeout=timeout),
                               what)
            self._caches[key] = cache
        return cache

    def pods_by_node(self) -> dict[str, tuple[str, str, str]]:
        """For each node that runs a pod the shared watches see, one of its running pods
        as (namespace, pod, container): the session depends on that node's kubelet for
        logs, exec and port-forwards, and can ask it through that pod."""
        found: dict[str, tuple[str, str, str]] = {}
        for (kind, namespace), cache in sorted(self._caches.items()):
            if kind != "Pod":
                continue
            for name, pod in sorted(cache.objects.items()):
                node = (pod.get("spec") or {}).get("nodeName")
                running = [s.get("name") for s in (pod.get("status") or {}).get(
                    "containerStatuses") or [] if "running" in (s.get("state") or {})]
                if node and running and node not in found:
                    found[str(node)] = (namespace, name, str(running[0]))
        return found

    async def stream_logs(self, namespace: str, pod: str, container: str,
                          since_time: str | None = None) -> AsyncIterator[str]:
        """Lines of a container's log (follow), from `since_time` (RFC 3339) if given.
        A dropped connection resumes after the last line seen; the stream ends when the
        container stops running or the pod is gone."""
        async for line in self.stream_log_lines(namespace, pod, container,
                                                LogCursor(since_time or "")):
            yield line.text

    def stream_log_lines(self, namespace: str, pod: str, container: str,
                         cursor: LogCursor) -> AsyncIterator[LogLine]:
        """Timestamped lines of a container's log after `cursor` (which the caller advances
        for each line it shows), as `stream_logs`."""
        follower = LogFollower(self, namespace, pod, container, cursor.since or None,
                               cursor.seen)
        return thread_stream(follower, f"logs {namespace}/{pod}/{container}")

    def watch_pod_events(self, namespace: str) -> AsyncIterator[PodEvent]:
        """Events about pods in `namespace` (the object is the Event), listed then watched
        like `watch_pods`."""
        return thread_stream(PodEventsWatcher(self, namespace), f"watch events {namespace}")

    async def exec(self, namespace: str, pod: str, container: str, argv: list[str],
                   stdin: bytes | None = None) -> ExecResult:
        """Run a command in a container, optionally feeding `stdin` (then closing it)."""
        return await asyncio.to_thread(exec_blocking, self, namespace, pod, container,
                                       list(argv), stdin)

    async def extract(self, namespace: str, pod: str, container: str,
                      archive: bytes) -> ExecResult:
        """Extract a tar `archive` at / in a container (`sync.EXTRACT_COMMAND`), on the
        extractor started there after the last one when it still waits."""
        return await asyncio.to_thread(self._extractors.run, namespace, pod, container,
                                       archive)


__all__ = [
    "DEFAULT_KINDS", "ApiResource", "ExecResult", "KubeClient", "KubeError", "ObjectRef",
    "PodEvent", "PortForwarder",
]
