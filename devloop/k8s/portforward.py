"""Port-forwarding: a local asyncio listener whose connections are tunnelled to a pod.

Each accepted TCP connection is a pair of streams on one SPDY session per pod, as kubectl
does (`spdy`), or, where the API server or a proxy does not upgrade to SPDY, a websocket of
its own (`websocket.PortForward`); either exposes the tunnel as a local socket, and bytes
are pumped both ways with asyncio. When the pod is gone or the tunnel fails, the
connection is closed and `on_error` tells the engine, which can `retarget` the forwarder to
a new pod without giving up the local port. `probe` says whether the pod's port really
answers, so a forward is only called healthy when a connection through it works.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devloop.k8s.errors import KubeError
from devloop.k8s.spdy import SpdySession, Tunnel, UpgradeRefused, open_session
from devloop.k8s.websocket import PortForward, open_portforward
from devloop.model import trace as tr
from devloop.model.background import spawn

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


# Tunnels are opened (and probes run) in threads of their own pool, never the loop's
# default one: without etcd the API server holds a tunnel's handshake until etcd returns,
# and client connections must not use up the threads every other Kubernetes call needs.
OPEN_THREADS = 4
# A tunnel that has not opened after this long fails its connection (the thread finishes
# in the background and closes what it opened).
OPEN_TIMEOUT_SECONDS = 10.0
# The same failure of one forward is reported at most this often; the others in between
# are counted and the count said with the next report.
REPORT_EVERY_SECONDS = 10.0

_POOL = concurrent.futures.ThreadPoolExecutor(OPEN_THREADS, thread_name_prefix="portforward")
# The kubelet's refusal names network namespaces and container IDs around the one fact
# that matters: "dial tcp4 127.0.0.1:9999: connect: connection refused".
_DIAL_ERROR = re.compile(r"dial tcp[46]? [^\s]*?:(\d+): connect: ([a-z ]+)")
# What `_open` puts in front of a failure: the forward, which the reader knows already.
_OWN_PREFIX = re.compile(r"^port-forward to \S+:\d+: ")
# The OS's reason for a failed connection: "[Errno 111] Connection refused".
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")
# How `describe_failure` begins what it said. Not "the API server answered N: ...": that is
# also how a refused handshake reads (`websocket.connect`), which may still need saying as
# the kubelet's absence; said again, it passes through the checks below unchanged.
_DESCRIBED = ("connection refused: nothing listens", "cannot connect to port",
              "the kubelet is unreachable", "cannot reach the API server",
              "the API server did not open")


def describe_failure(text: str) -> str:
    """A tunnel's failure in one short line: the kubelet's refusal to dial the pod's port
    without its network namespaces and container IDs, and what it means when the kubelet or
    the API server is away (a refused handshake arrives already read: `websocket.connect`).
    Said once, it says the same again (describing a description changes nothing)."""
    text = _OWN_PREFIX.sub("", " ".join(text.split()))
    if text.startswith(_DESCRIBED):
        return text
    dial = _DIAL_ERROR.search(text)
    if dial is not None and "error dialing backend" not in text:
        port, reason = dial.group(1), dial.group(2).strip()
        if reason == "connection refused":
            return f"connection refused: nothing listens on port {port} in the pod"
        return f"cannot connect to port {port} in the pod: {reason}"
    if "error dialing backend" in text:
        return f"the kubelet is unreachable ({text})"
    errno = _ERRNO.search(text)
    if errno is not None:  # the OS's, on the way to the API server (not the kubelet's)
        return f"cannot reach the API server: {errno.group(1).strip().lower()}"
    return text if len(text) <= 300 else text[:299] + "\u2026"


# How long a probe waits for the kubelet to report a failed dial. The kubelet dials the
# container port as soon as the tunnel opens and writes a refusal on the error channel at
# once; it never confirms a dial that worked, so a quiet wait means the port answered. On
# the test cluster a refusal arrives within 1 ms of the tunnel opening (which takes 15-60
# ms), so the wait is PROBE_OPENS times the tunnel's own opening time, at least
# PROBE_MIN_SECONDS and at most PROBE_SECONDS: a slow API server or kubelet (the refusal
# comes back the way the tunnel was opened) waits longer.
PROBE_SECONDS = 1.0
PROBE_MIN_SECONDS = 0.2
PROBE_OPENS = 4.0


def probe_quiet_seconds(opened_in: float) -> float:
    """How long a probe whose tunnel took `opened_in` seconds to open listens for a
    refused dial before it counts the port as answering."""
    return min(PROBE_SECONDS, max(PROBE_MIN_SECONDS, PROBE_OPENS * opened_in))


def declared_ports(pod: dict[str, Any]) -> list[int]:
    """Every containerPort the pod's containers declare, in order."""
    ports: list[int] = []
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            if isinstance(number, int) and number > 0:
                ports.append(number)
    return ports


def container_port_for(local_port: int, container_port: int, pod: dict[str, Any]) -> int:
    """The pod port a forward reaches, by Tilt's rule: the port given; else, when only the
    local port is given, the declared container port equal to it, else the first declared
    one; else the local port itself."""
    if container_port:
        return container_port
    ports = declared_ports(pod)
    if local_port in ports:
        return local_port
    return ports[0] if ports else local_port


class PortForwarder:
    """Listens on host:local_port and forwards each connection to the pod's remote_port."""

    def __init__(self, client: KubeClient, *,
                 on_error: Callable[[PortForwardError], None] | None = None) -> None:
        self._client = client
        self._on_error = on_error
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tracer: tr.Tracer | None = None
        # message -> (when last reported, how many since then not reported)
        self._reported: dict[str, tuple[float, int]] = {}
        self.namespace = ""
        self.pod = ""
        self.remote_port = 0
        self.host = "127.0.0.1"
        self.local_port = 0
        # The SPDY session to the pod connections go to; opened by the first of them.
        self._sessions: dict[tuple[str, str], SpdySession] = {}
        self._sessions_lock = threading.Lock()
        self._spdy_refused = False  # the upgrade was answered otherwise: websockets only
        self._stopped = False

    async def start(self, namespace: str, pod: str, local_port: int, remote_port: int,
                    host: str = "127.0.0.1") -> None:
        """Start listening (local_port 0 picks a free port, see `local_port`). Raises
        OSError when the port is taken."""
        if not 0 < remote_port <= 65535:
            raise ValueError(f"port-forward to {namespace}/{pod}: container port {remote_port} "
                             "is not in 1-65535")
        self.namespace, self.pod, self.remote_port, self.host = namespace, pod, remote_port, host
        # The resource's update tracer: the first answer after an update ends its trace.
        self._tracer = tr.current()
        self._stopped = False
        self._server = await asyncio.start_server(self._handle, host, local_port)
        self.local_port = int(self._server.sockets[0].getsockname()[1])

    def retarget(self, namespace: str, pod: str) -> None:
        """Send new connections to another pod (existing ones keep theirs); pod '': no
        pod to send them to now, they are closed at once (the port stays ours)."""
        self.namespace, self.pod = namespace, pod
        # Sessions to other pods close once their connections have (a snapshot: the lock
        # may be held by a thread opening a session, and this runs on the loop).
        for key, session in list(self._sessions.items()):
            if key != (namespace, pod):
                session.retire()

    async def stop(self) -> None:
        """Stop listening and close every forwarded connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
        self._stopped = True  # a session still being opened closes as it opens
        for session in list(self._sessions.values()):
            session.close()
        self._sessions.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    def _report(self, namespace: str, pod: str, message: str, pod_gone: bool) -> None:
        if self._on_error is None:
            return
        message = describe_failure(message)
        now = time.monotonic()
        last, held = self._reported.get(message, (-REPORT_EVERY_SECONDS, 0))
        if now - last < REPORT_EVERY_SECONDS and not pod_gone:
            self._reported[message] = (last, held + 1)
            return
        self._reported[message] = (now, 0)
        if held:
            message += f" (and {held} more connections since)"
        self._on_error(PortForwardError(namespace, pod, self.remote_port, message, pod_gone))

    async def _open_async(self, namespace: str, pod: str) -> PortForward | Tunnel:
        """`_open` in the forwards' own threads, given up after OPEN_TIMEOUT_SECONDS."""
        future = asyncio.get_running_loop().run_in_executor(_POOL, self._open, namespace, pod)
        if not await _within(future, OPEN_TIMEOUT_SECONDS):
            future.add_done_callback(_close_late)
            raise KubeError(f"port-forward to {namespace}/{pod}:{self.remote_port}: the API "
                            f"server did not open the tunnel in {OPEN_TIMEOUT_SECONDS:g} s",
                            temporary=True)
        return future.result()

    def _open(self, namespace: str, pod: str) -> PortForward | Tunnel:
        """A tunnel for one connection: streams on the pod's SPDY session, else a websocket."""
        try:
            if self._spdy_refused or self._client.transport.config.proxy_url:
                return self._open_websocket(namespace, pod)
            try:
                return self._session(namespace, pod).tunnel(self.remote_port)
            except UpgradeRefused:
                # A refusal a websocket gets too (the pod is gone) is said by the websocket;
                # one it does not get (no SPDY on the way) means websockets from now on.
                tunnel = self._open_websocket(namespace, pod)
                self._spdy_refused = True
                return tunnel
        except KubeError as e:
            raise KubeError(f"port-forward to {namespace}/{pod}:{self.remote_port}: "
                            f"{e.message}", temporary=True, status=e.status) from e

    def _open_websocket(self, namespace: str, pod: str) -> PortForward:
        return open_portforward(self._client.transport, namespace, pod, self.remote_port)

    def _session(self, namespace: str, pod: str) -> SpdySession:
        """The pod's session, opened when there is none that takes tunnels; sessions to
        other pods (the forward moved) close once their connections have."""
        with self._sessions_lock:
            session = self._sessions.get((namespace, pod))
            if session is not None and session.accepting:
                return session
            for key in [key for key in self._sessions if key != (namespace, pod)]:
                self._sessions.pop(key).retire()
            session = open_session(self._client.transport, namespace, pod)
            if self._stopped:
                session.close()
                raise KubeError("the forward has stopped", temporary=True)
            self._sessions[(namespace, pod)] = session
            return session

    async def probe(self) -> str:
        """Connect to the pod's port through a tunnel of our own: '' when the connection
        succeeds, else why it failed (refused, pod gone, API error), said briefly."""
        if not self.pod:
            return "no ready pod to forward to"
        future = asyncio.get_running_loop().run_in_executor(
            _POOL, self._probe_blocking, self.namespace, self.pod)
        if not await _within(future, OPEN_TIMEOUT_SECONDS + PROBE_SECONDS):
            return (f"the API server did not open a tunnel to {self.namespace}/{self.pod} in "
                    f"{OPEN_TIMEOUT_SECONDS:g} s")
        error = future.result()
        return describe_failure(error) if error else ""

    def _probe_blocking(self, namespace: str, pod: str) -> str:
        began = time.monotonic()
        try:
            # A tunnel of its own through the API server and the kubelet, opened now: a
            # stream on a session opened earlier would not show that they answer now.
            pf = self._open_websocket(namespace, pod)
        except KubeError as e:
            return f"port-forward to {namespace}/{pod}:{self.remote_port}: {e.message}"
        try:
            raw = pf.socket(self.remote_port)
            raw.settimeout(probe_quiet_seconds(time.monotonic() - began))
            try:
                raw.recv(1)
            except TimeoutError:
                return ""  # the dial worked: the server waits for a request
            except OSError as e:
                return f"{namespace}/{pod}:{self.remote_port}: {e}"
            error = pf.error(self.remote_port)
            # No error and an answer or a close: the server accepted the connection.
            return error.strip() if error else ""
        except Exception as e:  # anything the client raises means no working connection
            return f"{namespace}/{pod}:{self.remote_port}: {e}"
        finally:
            pf.close()

    async def _pod_gone(self, namespace: str, pod: str) -> bool:
        try:
            found = await self._client.list_pods(namespace)
        except KubeError:
            return False
        return not any(p.get("metadata", {}).get("name") == pod for p in found)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        namespace, pod = self.namespace, self.pod
        if not pod:
            writer.close()
            self._report(namespace, pod, "no ready pod to forward to", False)
            return
        self._writers.add(writer)
        try:
            await self._serve(namespace, pod, reader, writer)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # whatever breaks one connection is reported, never raised
            self._report(namespace, pod, f"{type(e).__name__}: {e}", False)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve(self, namespace: str, pod: str, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        try:
            pf = await self._open_async(namespace, pod)
        except KubeError as e:
            self._report(namespace, pod, e.message, await self._pod_gone(namespace, pod))
            return
        try:
            raw = pf.socket(self.remote_port)
            raw.setblocking(False)
            pod_reader, pod_writer = await asyncio.open_connection(sock=raw)
        except BaseException:
            pf.close()
            raise
        # The tunnel is open: the request goes to the pod now (for the update's trace,
        # an answer counts as new only when its request reached the pod after ready).
        opened = time.time()
        where = f"{namespace}/{pod}:{self.remote_port}"
        to_pod = spawn(_pump(reader, pod_writer), name=f"port-forward {where} to pod")
        tracer = self._tracer
        from_pod = spawn(_pump(pod_reader, writer, None if tracer is None
                               else lambda: tracer.answered(opened)),
                         name=f"port-forward {where} from pod")
        try:
            # The tunnel cannot half-close: whichever side ends first ends both.
            await asyncio.wait({to_pod, from_pod}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            to_pod.cancel()
            from_pod.cancel()
            pod_writer.close()
            pf.close()
        error = pf.error(self.remote_port)
        if error:
            self._report(namespace, pod, error.strip(), await self._pod_gone(namespace, pod))


async def _within(future: asyncio.Future[Any], seconds: float) -> bool:
    """Whether `future` is done within `seconds`; it goes on running if not. Not
    `wait_for(shield(...))`: in Python 3.11 that returns the result, and the cancellation
    of the waiting task is lost, when the future ends just as the task is cancelled (a
    monitor that probes five times a second then never stops, and whoever waits for it
    waits forever)."""
    done, _ = await asyncio.wait({future}, timeout=seconds)
    return bool(done)


def _close_late(future: concurrent.futures.Future[PortForward | Tunnel]
                | asyncio.Future[Any]) -> None:
    """A tunnel that opened after its connection gave up on it: close it."""
    if future.cancelled() or future.exception() is not None:
        return
    future.result().close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                first: Callable[[], None] | None = None) -> None:
    """Copy until either side ends; `first` is called when the first bytes arrive."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(PUMP_CHUNK):
            if first is not None:
                answered, first = first, None
                answered()
            writer.write(data)
            await writer.drain()
