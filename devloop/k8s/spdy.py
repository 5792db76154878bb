"""Port-forward over one SPDY/3.1 session per pod: each forwarded connection is a pair of
streams on a connection that is already open, as kubectl does. A websocket per connection
pays for a TLS handshake, an upgrade and the API server's and the kubelet's own dials each
time: 20-25 ms a connection on the test cluster, against ~5 ms for a pair of streams.

The protocol (`portforward.k8s.io` over SPDY/3.1): the client upgrades a POST to the pod's
`portforward` path with `Upgrade: SPDY/3.1`; for each connection it opens an error stream
and a data stream whose headers name the stream's type, the pod's port and a request ID
that pairs them. With both, the kubelet dials the port and copies bytes between it and the
data stream, writes why on the error stream if it could not, and half-closes (FIN) the data
stream when the pod's side ends.

Frames: a control frame begins with a set bit, the version (3), its type, flags and a 24-bit
length; a data frame with a 31-bit stream ID, flags and a length. Header blocks are
compressed in one zlib stream per direction. Ours is compressed without SPDY's preset
dictionary (zlib's own header says so, and the server's decompressor then does not use
it); the server's are skipped unread, since nothing in them matters here. The server does
no flow control on these streams, so neither side sends window updates.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import urllib.parse
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from devloop.k8s.errors import KubeError, is_temporary_status, status_reason
from devloop.k8s.transport import REQUEST_TIMEOUT, Transport
from devloop.k8s.websocket import LocalEnd, holds_decrypted

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = (
    1, 2, 3, 4, 6, 7, 8, 9)
FLAG_FIN = 0x01
RST_CANCEL = 5
PROTOCOL = "portforward.k8s.io"
# The upgrade may wait as long as an ordinary request's answer.
HANDSHAKE_TIMEOUT = REQUEST_TIMEOUT[1]
MAX_RESPONSE_HEAD = 64 * 1024
# Bytes read from a socket per step.
CHUNK = 64 * 1024


# ------------------------------------------------------------------------------- frames


def control_frame(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, data: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(data)) + data


def header_block(compressor: Any, headers: dict[str, str]) -> bytes:
    """`headers` as SPDY/3 writes them (32-bit counts and lengths), compressed and flushed
    in the session's zlib stream, so the server can read them at once."""
    raw = bytearray(struct.pack(">I", len(headers)))
    for name, value in headers.items():
        for text in (name.lower(), value):
            encoded = text.encode()
            raw += struct.pack(">I", len(encoded)) + encoded
    return bytes(compressor.compress(bytes(raw)) + compressor.flush(zlib.Z_SYNC_FLUSH))


def syn_stream(stream_id: int, block: bytes, flags: int = 0) -> bytes:
    # Stream ID, associated stream 0, priority 0 and slot 0, then the headers.
    return control_frame(SYN_STREAM, flags, struct.pack(">IIBB", stream_id, 0, 0, 0) + block)


@dataclass(frozen=True)
class Frame:
    """A control frame (`kind` its type) or a data frame (`kind` 0, `stream` its stream)."""

    control: bool
    kind: int
    stream: int
    flags: int
    payload: bytes


class FrameReader:
    """Frames from bytes as they arrive, in pieces of any size."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[Frame]:
        self._buffer += data
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from(">II", self._buffer)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                return
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            flags = second >> 24
            if first & 0x80000000:
                kind = first & 0xFFFF
                stream = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF \
                    if kind in (SYN_STREAM, SYN_REPLY, RST_STREAM, HEADERS, WINDOW_UPDATE) \
                    and len(payload) >= 4 else 0
                yield Frame(True, kind, stream, flags, payload)
            else:
                yield Frame(False, 0, first & 0x7FFFFFFF, flags, payload)


# ------------------------------------------------------------------------------ session


class Tunnel(LocalEnd):
    """One forwarded connection: `socket(port)` is its local end, `error(port)` what the
    kubelet said went wrong; the same calls as a websocket's `PortForward`."""

    def __init__(self, error_stream: int, data_stream: int, session: SpdySession) -> None:
        super().__init__()
        self.error_stream = error_stream
        self.data_stream = data_stream
        self.session = session
        self.failure: str | None = None
        # The kubelet half-closed the data stream (the pod's side ended) and the error
        # stream (it has said whether that was a failure: the data stream ends first when
        # the dial failed, then the error comes). With both, the local socket closes once
        # `to_user` is written.
        self.pod_done = False
        self.errors_done = False

    @property
    def finished(self) -> bool:
        return self.pod_done and self.errors_done and not self.to_user

    def socket(self, port: int) -> socket.socket:
        return self.user

    def error(self, port: int) -> str | None:
        return self.failure

    def close(self) -> None:
        """Close the local socket; the session ends the streams."""
        with contextlib.suppress(OSError):
            self.user.close()
        self.session.wake()


class SpdySession:
    """An upgraded connection to one pod's port-forward. `tunnel(port)` opens a connection
    on it; one thread moves the frames of all of them. Once the connection fails or the
    server says it goes away, `accepting` is False and a new session is needed."""

    def __init__(self, sock: socket.socket, leftover: bytes, where: str) -> None:
        self._sock = sock
        self._where = where
        self._compressor = zlib.compressobj()
        self._lock = threading.Lock()
        self._outgoing = bytearray()  # frames not yet sent
        self._tunnels: dict[int, Tunnel] = {}  # by both of their stream IDs
        self._next_stream = 1  # a client's streams are odd, four to a connection
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._reader = FrameReader()
        self._pending = leftover
        self.retired = False  # takes no more tunnels, closes once its last one has
        self._ended = False  # the connection is gone
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"port-forward session {where}")
        self._thread.start()

    def tunnel(self, port: int) -> Tunnel:
        """A new connection to the pod's `port`. Raises KubeError when the session cannot
        take one any more."""
        with self._lock:
            if not self.accepting:
                raise KubeError(f"the port-forward session to {self._where} has ended",
                                temporary=True)
            error_id, data_id = self._next_stream, self._next_stream + 2
            self._next_stream += 4
            request = str(error_id // 4)  # 0, 1, 2...: pairs the two streams
            tunnel = Tunnel(error_id, data_id, self)
            self._tunnels[error_id] = self._tunnels[data_id] = tunnel
            for stream, kind, flags in ((error_id, "error", FLAG_FIN), (data_id, "data", 0)):
                # The error stream only ever comes our way: it is half-closed at once.
                block = header_block(self._compressor, {
                    "streamType": kind, "port": str(port), "requestID": request})
                self._outgoing += syn_stream(stream, block, flags)
        self.wake()
        return tunnel

    @property
    def accepting(self) -> bool:
        return not self.retired and not self._ended

    def retire(self) -> None:
        """Take no more tunnels, and close once the open ones are done."""
        with self._lock:
            self.retired = True
        self.wake()

    def close(self) -> None:
        with self._lock:
            self.retired = True
            tunnels = set(self._tunnels.values())
        for tunnel in tunnels:
            tunnel.close()
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def _send(self, frame: bytes) -> None:
        with self._lock:
            self._outgoing += frame

    def _live(self) -> list[Tunnel]:
        with self._lock:
            return [t for t in dict.fromkeys(self._tunnels.values()) if not t.closed]

    def _forget(self, tunnel: Tunnel) -> None:
        with self._lock:
            self._tunnels.pop(tunnel.error_stream, None)
            self._tunnels.pop(tunnel.data_stream, None)

    def _run(self) -> None:
        failure = ""
        try:
            if self._pending:
                self._receive(self._pending)
            while True:
                tunnels = self._live()
                with self._lock:
                    if self.retired and not tunnels:
                        return
                    outgoing, self._outgoing = self._outgoing, bytearray()
                if outgoing:
                    self._sock.sendall(outgoing)
                readers: list[Any] = [self._sock, self._wake_read]
                readers += [t.far for t in tunnels]
                writers = [t.far for t in tunnels if t.to_user]
                if holds_decrypted(self._sock):
                    readable, writable = [self._sock], list[Any]()
                else:
                    readable, writable, _ = select.select(readers, writers, [])
                if self._wake_read in readable:
                    with contextlib.suppress(OSError):
                        self._wake_read.recv(4096)
                if self._sock in readable:
                    data = self._sock.recv(CHUNK)
                    if not data:
                        failure = "the API server closed the port-forward session"
                        return
                    self._receive(data)
                for tunnel in tunnels:
                    if tunnel.far in readable and not tunnel.closed:
                        self._read_local(tunnel)
                    if tunnel.far in writable and not tunnel.closed:
                        self._write_local(tunnel)
        except Exception as e:  # whatever ends the session fails its connections, said
            failure = f"port-forward session failed: {type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._ended = True
                tunnels = list(dict.fromkeys(self._tunnels.values()))
                self._tunnels.clear()
            for tunnel in tunnels:
                if failure and tunnel.failure is None and not tunnel.closed:
                    tunnel.failure = f"port-forward tunnel failed: {failure}"
                tunnel.end()
            for sock in (self._sock, self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    sock.close()

    def _receive(self, data: bytes) -> None:
        for frame in self._reader.feed(data):
            if not frame.control:
                self._on_data(frame)
            elif frame.kind == PING:
                self._send(control_frame(PING, 0, frame.payload))  # answered as it came
            elif frame.kind == GOAWAY:
                with self._lock:
                    self.retired = True
            elif frame.kind == RST_STREAM:
                tunnel = self._tunnels.get(frame.stream)
                if tunnel is not None:
                    if tunnel.failure is None and not tunnel.closed:
                        status = struct.unpack_from(">I", frame.payload, 4)[0] \
                            if len(frame.payload) >= 8 else 0
                        tunnel.failure = f"the kubelet reset the connection (status {status})"
                    tunnel.end()
                    self._forget(tunnel)
            # SYN_REPLY, SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do.

    def _on_data(self, frame: Frame) -> None:
        tunnel = self._tunnels.get(frame.stream)
        if tunnel is None:
            return  # a connection already over
        if frame.stream == tunnel.error_stream:
            tunnel.errors_done = tunnel.errors_done or bool(frame.flags & FLAG_FIN)
            if frame.payload:
                # After an error (a dial refused: nothing listens yet) on a connection whose
                # client had already sent bytes, the server's side of the session serves no
                # new connection: their streams open and then hang (seen with containerd's
                # streaming server; kubectl ends its whole port-forward on such an error).
                # So the session takes no more tunnels, and the next connection gets a
                # session of its own.
                with self._lock:
                    self.retired = True
                if not tunnel.closed:
                    # The kubelet gave up on this connection: say why, and end the local
                    # socket (its reader sees the end of the stream, then reads the error).
                    tunnel.failure = (tunnel.failure or "") + frame.payload.decode(
                        errors="replace")
                    self._end(tunnel)
        else:
            if frame.payload and not tunnel.closed:
                tunnel.to_user += frame.payload
            tunnel.pod_done = tunnel.pod_done or bool(frame.flags & FLAG_FIN)
        if tunnel.finished:
            self._end(tunnel)

    def _end(self, tunnel: Tunnel) -> None:
        """The connection is over: free both streams on the server too."""
        if not tunnel.closed:
            tunnel.end()
        self._forget(tunnel)
        for stream in (tunnel.data_stream, tunnel.error_stream):
            self._send(control_frame(RST_STREAM, 0, struct.pack(">II", stream, RST_CANCEL)))

    def _read_local(self, tunnel: Tunnel) -> None:
        try:
            data = tunnel.far.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._send(data_frame(tunnel.data_stream, 0, data))
        else:  # the local socket was closed: this connection is over
            self._end(tunnel)

    def _write_local(self, tunnel: Tunnel) -> None:
        if not tunnel.flush() or tunnel.finished:
            self._end(tunnel)


# ------------------------------------------------------------------------------ opening


class UpgradeRefused(KubeError):
    """The API server answered the upgrade, but not with 101."""


def open_session(transport: Transport, namespace: str, pod: str) -> SpdySession:
    """An upgraded SPDY connection to the pod's port-forward (blocking). Raises KubeError:
    UpgradeRefused with the HTTP status when the API server answered otherwise, temporary
    without one when it was not reached."""
    path = f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward"
    url = urllib.parse.urlsplit(transport.url(path))
    secure = url.scheme == "https"
    host = url.hostname or ""
    port = url.port or (443 if secure else 80)
    refresh = False
    while True:
        prepared = transport.prepare(refresh=refresh)
        try:
            sock = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT)
        except OSError as e:
            raise KubeError(str(e) or type(e).__name__, temporary=True) from e
        try:
            if secure and prepared.ssl_context is not None:
                name = transport.config.tls_server_name or host
                sock = prepared.ssl_context.wrap_socket(sock, server_hostname=name)
            head = [f"POST {url.path} HTTP/1.1", f"Host: {url.netloc}",
                    "Connection: Upgrade", "Upgrade: SPDY/3.1",
                    f"X-Stream-Protocol-Version: {PROTOCOL}", "Content-Length: 0",
                    *(f"{k}: {v}" for k, v in prepared.headers.items())]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            status, body, leftover = _read_response(sock)
        except OSError as e:
            with contextlib.suppress(OSError):
                sock.close()
            raise KubeError(str(e) or type(e).__name__, temporary=True) from e
        if status == 101:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SpdySession(sock, leftover, f"{namespace}/{pod}")
        with contextlib.suppress(OSError):
            sock.close()
        if status == 401 and not refresh and transport.refreshable:
            refresh = True
            continue
        reason, message = status_reason(body)
        raise UpgradeRefused(f"the API server answered {status}: {message or 'no reason given'}",
                             status=status, reason=reason,
                             temporary=is_temporary_status(status))


def _read_response(sock: socket.socket) -> tuple[int, str, bytes]:
    """The status, the body (when not 101) and the bytes after the head (when 101)."""
    received = bytearray()
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise OSError("the API server closed the connection during the upgrade")
        received += chunk
        if len(received) > MAX_RESPONSE_HEAD:
            raise OSError("the API server's answer to the upgrade has no end of headers")
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise OSError(f"not an HTTP answer: {lines[0][:100]!r}")
    status = int(parts[1])
    if status == 101:
        return status, "", rest
    length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                   if line.lower().startswith("content-length:")
                   and line.split(":", 1)[1].strip().isdigit()), None)
    body = bytearray(rest)
    with contextlib.suppress(OSError):
        while (length is None or len(body) < length) and len(body) < MAX_RESPONSE_HEAD:
            chunk = sock.recv(CHUNK)
            if not chunk:
                break
            body += chunk
    return status, bytes(body).decode(errors="replace"), b""
