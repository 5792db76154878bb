"""The shared watches that drive the runtime recover when the API server closes a watch.

Against the test cluster's real API server, one shared `WatchCache` of the namespace's pods:
* the server answers a watch with 410 Gone ("too old resource version"): the cache lists
  again, drops what vanished meanwhile, and follows changes made after;
* the connection under a running watch is cut (a TCP proxy between the client and the API
  server drops it): the watch resumes from the last version it saw, without listing again,
  and misses nothing made while it was down.
(A watch the server ends at its timeout is tests/integration/test_runtime_watch.py's.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlparse

import pytest

from devloop.k8s.client import KubeClient, ObjectRef
from devloop.k8s.errors import KubeError
from devloop.k8s.streams import KindWatcher, WatchCache

pytestmark = pytest.mark.integration


def pod(namespace: str, name: str) -> dict[str, Any]:
    # Never pulled: the watch only needs the object (deleted at once, grace period 0).
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": "watched"}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [
                {"name": "main", "image": "127.0.0.1:5000/devloop-absent:never"}]}}


class RecordingWatcher(KindWatcher):
    """The real list-then-watch, recording each list and each error a watch ended with.
    With `stale_first`, the first list's resourceVersion is replaced by "1", far older than
    anything the API server keeps, so the next watch is answered 410 Gone."""

    def __init__(self, kube: KubeClient, namespace: str, record: dict[str, list[Any]], *,
                 stale_first: bool) -> None:
        super().__init__(kube, f"/api/v1/namespaces/{namespace}/pods", f"pods in {namespace}",
                         watch_timeout=60)
        self.record = record
        self.stale_first = stale_first

    def _relist(self, known: dict[str, dict[str, Any]], emit: Callable[..., None],
                ) -> tuple[str, dict[str, dict[str, Any]]]:
        rv, current = super()._relist(known, emit)
        self.record["lists"].append(sorted(current))
        if self.stale_first and len(self.record["lists"]) == 1:
            rv = "1"
        return rv, current

    def _watch(self, rv: str, known: dict[str, dict[str, Any]],
               emit: Callable[..., None]) -> str:
        self.record["watches"].append(rv)
        try:
            return super()._watch(rv, known, emit)
        except KubeError as exc:
            self.record["errors"].append(exc.status)
            raise
        except Exception as exc:
            self.record["errors"].append(type(exc).__name__)
            raise


async def until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def names(cache: WatchCache) -> list[str]:
    return sorted(p["metadata"]["name"] for p in cache.select({"app": "watched"}))


async def test_a_watch_answered_410_gone_lists_again_and_follows_later_changes(
        testenv, k8s_namespace):
    kube = await KubeClient.create(str(testenv.kubeconfig))
    record: dict[str, list[Any]] = {"lists": [], "watches": [], "errors": []}
    cache = WatchCache(lambda: RecordingWatcher(kube, k8s_namespace, record, stale_first=True),
                       f"pods in {k8s_namespace}")
    try:
        await kube.server_side_apply(pod(k8s_namespace, "before"))
        cache.listen(lambda: None)
        await until(lambda: len(record["lists"]) >= 2 and cache.synced, "a second list")
        assert 410 in record["errors"], record  # the server refused the stale version
        assert record["watches"][0] == "1" and record["watches"][-1] != "1"
        assert names(cache) == ["before"] and cache.error == ""
        # After the relist, the watch follows what changes.
        await kube.server_side_apply(pod(k8s_namespace, "after"))
        await kube.delete(ObjectRef.of(pod(k8s_namespace, "before")))
        await until(lambda: names(cache) == ["after"], "the new pod and the deletion")
        assert len(record["lists"]) == 2  # followed by the watch, not by listing again
    finally:
        cache.cancel()
        kube.close()


class CuttingProxy:
    """A TCP proxy to the API server that can drop every connection through it at once."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connections: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.server: asyncio.Server | None = None
        self.cuts = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        self.connections.append((writer, upstream_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))

    def cut(self) -> None:
        self.cuts += 1
        for client, upstream in self.connections:
            for writer in (client, upstream):
                transport = writer.transport
                with contextlib.suppress(Exception):
                    transport.abort()
        self.connections.clear()

    async def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@contextlib.asynccontextmanager
async def through_proxy(kubeconfig: str) -> AsyncIterator[tuple[KubeClient, CuttingProxy]]:
    kube = await KubeClient.create(kubeconfig)
    server = urlparse(kube.configuration.host)
    proxy = CuttingProxy(server.hostname or "127.0.0.1", server.port or 443)
    port = await proxy.start()
    # The API server's certificate names 127.0.0.1, so TLS checks pass through the proxy.
    kube.configuration.host = f"{server.scheme}://127.0.0.1:{port}"
    try:
        yield kube, proxy
    finally:
        kube.close()
        await proxy.stop()


async def test_a_watch_whose_connection_is_cut_resumes_from_its_version_and_misses_nothing(
        testenv, k8s_namespace):
    async with through_proxy(str(testenv.kubeconfig)) as (kube, proxy):
        record: dict[str, list[Any]] = {"lists": [], "watches": [], "errors": []}
        cache = WatchCache(
            lambda: RecordingWatcher(kube, k8s_namespace, record, stale_first=False),
            f"pods in {k8s_namespace}")
        direct = await KubeClient.create(str(testenv.kubeconfig))  # changes bypass the proxy
        try:
            cache.listen(lambda: None)
            await until(lambda: cache.synced and record["watches"], "the first watch")
            await direct.server_side_apply(pod(k8s_namespace, "one"))
            await until(lambda: names(cache) == ["one"], "the first pod")
            watches_before = len(record["watches"])
            # Cut the running watch, and make changes while it is down.
            await asyncio.to_thread(proxy.cut)
            await direct.server_side_apply(pod(k8s_namespace, "two"))
            await direct.delete(ObjectRef.of(pod(k8s_namespace, "one")))
            await until(lambda: names(cache) == ["two"], "what changed while it was cut")
            assert proxy.cuts == 1 and record["errors"], record  # the cut ended that watch
            assert len(record["watches"]) > watches_before
            assert len(record["lists"]) == 1  # resumed from its version: no second list
            assert record["watches"][-1] not in ("", "1")
            assert cache.synced and cache.error == ""
        finally:
            cache.cancel()
            direct.close()


def test_the_proxy_really_cuts(testenv):
    # The cut test means something only if cutting ends a request in flight.
    async def run() -> str:
        async with through_proxy(str(testenv.kubeconfig)) as (kube, proxy):
            done = threading.Event()
            outcome: list[str] = []

            def watch() -> None:
                try:
                    response = kube.request("GET", "/api/v1/namespaces/default/pods",
                                            query=[("watch", "true"),
                                                   ("timeoutSeconds", 60)],
                                            stream=True, timeout=(10.0, 90.0))
                    while response.read1(65536):
                        pass
                    outcome.append("ended")
                except Exception as exc:  # what a cut connection raises
                    outcome.append(type(exc).__name__)
                finally:
                    done.set()

            thread = threading.Thread(target=watch, daemon=True)
            thread.start()
            await until(lambda: proxy.connections, "the watch's connection")
            await asyncio.sleep(0.5)
            proxy.cut()
            await until(done.is_set, "the cut watch to end", timeout=10)
            return outcome[0]

    assert asyncio.run(run()) in ("ended", "ProtocolError", "ReadTimeoutError",
                                  "ConnectionResetError", "KubeError", "SSLError")
