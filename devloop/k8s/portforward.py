"""Port-forwarding: a local asyncio listener whose connections are tunnelled to a pod.

Each accepted TCP connection opens its own port-forward websocket to the pod (through
`kubernetes.stream.portforward`, whose proxy thread exposes the tunnel as a local socket),
and bytes are pumped both ways with asyncio. When the pod is gone or the tunnel fails, the
connection is closed and `on_error` tells the engine, which can `retarget` the forwarder to
a new pod without giving up the local port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward

from devloop.k8s.errors import KubeError

if TYPE_CHECKING:
    from devloop.k8s.client import KubeClient

# Bytes read from either side per pump step.
PUMP_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PortForwardError:
    """Why a forwarded connection failed; `pod_gone` asks the engine to pick another pod."""

    namespace: str
    pod: str
    remote_port: int
    message: str
    pod_gone: bool


class PortForwarder:
    """Listens on host:local_port and forwards each connection to the pod's remote_port."""

    def __init__(self, client: KubeClient, *,
                 on_error: Callable[[PortForwardError], None] | None = None) -> None:
        self._client = client
        self._on_error = on_error
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.namespace = ""
        self.pod = ""
        self.remote_port = 0
        self.host = "127.0.0.1"
        self.local_port = 0

    async def start(self, namespace: str, pod: str, local_port: int, remote_port: int,
                    host: str = "127.0.0.1") -> None:
        """Start listening (local_port 0 picks a free port, see `local_port`). Raises
        OSError when the port is taken."""
        self.namespace, self.pod, self.remote_port, self.host = namespace, pod, remote_port, host
        self._server = await asyncio.start_server(self._handle, host, local_port)
        self.local_port = int(self._server.sockets[0].getsockname()[1])

    def retarget(self, namespace: str, pod: str) -> None:
        """Send new connections to another pod (existing ones keep theirs)."""
        self.namespace, self.pod = namespace, pod

    async def stop(self) -> None:
        """Stop listening and close every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _report(self, namespace: str, pod: str, message: str, pod_gone: bool) -> None:
        if self._on_error is not None:
            self._on_error(PortForwardError(namespace, pod, self.remote_port, message,
                                            pod_gone))

    def _open(self, namespace: str, pod: str) -> tuple[Any, Any]:
        api = CoreV1Api(self._client.new_api_client())
        try:
            pf = portforward(api.connect_get_namespaced_pod_portforward, pod, namespace,
                             ports=str(self.remote_port))
        except ApiException as e:
            api.api_client.close()
            raise KubeError(f"port-forward to {namespace}/{pod}:{self.remote_port}: "
                            f"{e.reason or e}", temporary=True, status=e.status) from e
        return pf, api

    async def _pod_gone(self, namespace: str, pod: str) -> bool:
        try:
            found = await self._client.list_pods(namespace)
        except KubeError:
            return False
        return not any(p.get("metadata", {}).get("name") == pod for p in found)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        namespace, pod = self.namespace, self.pod
        self._writers.add(writer)
        api = None
        try:
            try:
                pf, api = await asyncio.to_thread(self._open, namespace, pod)
            except KubeError as e:
                self._report(namespace, pod, e.message, await self._pod_gone(namespace, pod))
                return
            raw: socket.socket = pf.socket(self.remote_port)._socket
            raw.setblocking(False)
            pod_reader, pod_writer = await asyncio.open_connection(sock=raw)
            to_pod = asyncio.create_task(_pump(reader, pod_writer))
            from_pod = asyncio.create_task(_pump(pod_reader, writer))
            try:
                # The library's tunnel cannot half-close: whichever side ends first ends both.
                await asyncio.wait({to_pod, from_pod}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                to_pod.cancel()
                from_pod.cancel()
                pod_writer.close()
                pf.close()
            error = pf.error(self.remote_port)
            if error:
                self._report(namespace, pod, error.strip(), await self._pod_gone(namespace, pod))
        finally:
            self._writers.discard(writer)
            writer.close()
            if api is not None:
                api.api_client.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(PUMP_CHUNK):
            writer.write(data)
            await writer.drain()
