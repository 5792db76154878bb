"""Exec and port-forward websockets to the API server, on websocket-client.

Both speak Kubernetes' channel protocol: every binary message starts with a byte naming its
channel. For exec: 0 stdin, 1 stdout, 2 stderr, 3 the command's final Status (JSON), 4
terminal resizes; with `v5.channel.k8s.io`, a message on channel 255 closes the channel its
second byte names, which is how a command reading stdin sees it end (with v4 it never
does). For a port-forward of ports p0, p1...: port i's bytes travel on channel 2*i, its
errors (the kubelet could not dial the pod's port) on 2*i+1, and the first message of each
channel is only the port's number (2 bytes, little-endian), which is dropped.

Each websocket is its own connection, with the TLS context and credentials of ordinary
requests (`Transport.prepare`). A failed handshake becomes a KubeError carrying the HTTP
status and the API server's message.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import websocket

from devloop.k8s.errors import KubeError, is_temporary_status, status_reason
from devloop.k8s.transport import REQUEST_TIMEOUT, Proxy, Transport

STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3
CLOSE_CHANNEL = 255
V5_CHANNEL = "v5.channel.k8s.io"
V4_CHANNEL = "v4.channel.k8s.io"
# The handshake may wait as long as an ordinary request's answer; after it, a command may
# run (and a tunnel stay open) for as long as it likes.
HANDSHAKE_TIMEOUT = REQUEST_TIMEOUT[1]
# Bytes read from the local end of a tunnel per message.
CHUNK = 64 * 1024
# How long closing an exec waits for the server's answer to our close.
CLOSE_TIMEOUT = 1.0


def holds_decrypted(sock: Any) -> bool:
    """A TLS socket may hold whole decrypted frames already, which select() cannot see."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _readable(ws: websocket.WebSocket, timeout: float | None) -> bool:
    """Whether a frame can be read now (waiting up to `timeout`)."""
    sock = ws.sock
    if sock is None:
        return False
    if holds_decrypted(sock):
        return True
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


def connect(transport: Transport, path: str, query: Iterable[tuple[str, Any]],
            subprotocols: list[str]) -> websocket.WebSocket:
    """An open websocket to `path` (blocking). Raises KubeError: with the HTTP status when
    the API server refused the handshake, temporary without one when it was not reached."""
    url = transport.url(path, query)
    url = "wss://" + url.removeprefix("https://") if url.startswith("https://") else \
        "ws://" + url.removeprefix("http://")
    config = transport.config
    options: dict[str, Any] = {}
    if config.proxy_url:
        proxy = Proxy.parse(config.proxy_url)
        options.update(http_proxy_host=proxy.host, http_proxy_port=proxy.port,
                       proxy_type="http")
        if proxy.auth is not None:
            options["http_proxy_auth"] = proxy.auth
    else:
        # Where ordinary requests go directly, so do websockets (websocket-client would
        # otherwise follow the https_proxy variable, which requests do not).
        options["http_no_proxy"] = ["*"]
    refresh = False
    while True:
        prepared = transport.prepare(refresh=refresh)
        sslopt: dict[str, Any] = {}
        if prepared.ssl_context is not None:
            sslopt["context"] = prepared.ssl_context
            if config.tls_server_name:
                sslopt["server_hostname"] = config.tls_server_name
        try:
            ws = websocket.create_connection(
                url, header=[f"{k}: {v}" for k, v in prepared.headers.items()],
                subprotocols=subprotocols, sslopt=sslopt, timeout=HANDSHAKE_TIMEOUT,
                skip_utf8_validation=True, **options)
        except websocket.WebSocketBadStatusException as e:
            if e.status_code == 401 and not refresh and transport.refreshable:
                refresh = True
                continue
            raise _handshake_error(e) from None
        except (websocket.WebSocketException, OSError) as e:
            raise KubeError(str(e) or type(e).__name__, temporary=True) from e
        ws.settimeout(None)
        return ws


def _handshake_error(e: websocket.WebSocketBadStatusException) -> KubeError:
    reason, message = status_reason((e.resp_body or b"").decode(errors="replace"))
    status = int(e.status_code)
    message = message or str(e.status_message or "") or "no reason given"
    return KubeError(f"the API server answered {status}: {message}", status=status,
                     reason=reason, temporary=is_temporary_status(status))


# ---------------------------------------------------------------------------------- exec


class ExecStream:
    """An exec's channels: `update` reads what arrived, `read_channel` takes it."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self._ws = ws
        self._v5 = ws.getsubprotocol() == V5_CHANNEL
        self._buffers: dict[int, bytearray] = {}
        self._open = True

    def is_open(self) -> bool:
        return self._open

    def waiting(self) -> bool:
        """Whether the command can still be handed its stdin: the stream is open, no
        Status came (a command that ended sends one; a dropped connection reads as
        closed), and stdin can be ended (v5), so a command reading to its end stops. What
        did arrive (the empty first frame of each channel, early output) is kept."""
        self.update(0)
        return self._open and self._v5 and STATUS not in self._buffers

    def update(self, timeout: float) -> None:
        """Take every frame that has arrived, waiting up to `timeout` for the first."""
        wait: float | None = timeout
        while self._open and _readable(self._ws, wait):
            wait = 0
            try:
                opcode, frame = self._ws.recv_data_frame(True)
            except (websocket.WebSocketConnectionClosedException, OSError):
                self._open = False
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self._open = False
                return
            data = bytes(frame.data or b"")
            if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) \
                    or not data:
                continue
            if data[0] == CLOSE_CHANNEL and self._v5:
                continue  # the server closed one of its channels: nothing to keep
            self._buffers.setdefault(data[0], bytearray()).extend(data[1:])

    def read_channel(self, channel: int) -> bytes:
        """What arrived on `channel` since the last read."""
        return bytes(self._buffers.pop(channel, b""))

    def write_stdin(self, data: bytes) -> None:
        self._ws.send_bytes(bytes([STDIN]) + data)

    def close_stdin(self) -> None:
        """End the command's stdin (v5 only: with v4 it cannot be ended)."""
        if self._v5:
            self._ws.send_bytes(bytes([CLOSE_CHANNEL, STDIN]))

    def close(self) -> None:
        self._open = False
        with contextlib.suppress(Exception):
            self._ws.close(timeout=CLOSE_TIMEOUT)


def open_exec(transport: Transport, namespace: str, pod: str, container: str,
              argv: list[str], *, stdin: bool) -> ExecStream:
    """Run `argv` in the container (stdout and stderr on, no tty). Raises KubeError."""
    ws = connect(transport, f"/api/v1/namespaces/{namespace}/pods/{pod}/exec", [
        ("command", argv), ("container", container), ("stderr", True), ("stdin", stdin),
        ("stdout", True), ("tty", False)], [V5_CHANNEL, V4_CHANNEL])
    return ExecStream(ws)


# --------------------------------------------------------------------------- port-forward


class LocalEnd:
    """A forwarded connection's local end: a socket pair, `user` for whoever forwards it,
    `far` for the thread that pumps it (non-blocking), and what came from the pod but is
    not yet written to `far`."""

    def __init__(self) -> None:
        self.user, self.far = socket.socketpair()
        self.far.setblocking(False)
        self.to_user = bytearray()
        self.closed = False

    def end(self) -> None:
        self.closed = True
        self.to_user.clear()
        with contextlib.suppress(OSError):
            self.far.close()

    def flush(self) -> bool:
        """Write what `far` can take of `to_user`; False when the local socket was closed
        under us."""
        try:
            sent = self.far.send(self.to_user)
        except BlockingIOError:
            return True
        except OSError:
            return False
        del self.to_user[:sent]
        return True


class _Port(LocalEnd):
    """One forwarded port: its local end, its channels, what the kubelet said."""

    def __init__(self, index: int, number: int) -> None:
        super().__init__()
        self.number = number
        self.data_channel = 2 * index
        self.error: str | None = None
        self.started = [False, False]  # whether each channel's port prefix arrived


class PortForward:
    """Ports of a pod through one websocket. `socket(port)` is a connected local socket;
    one thread pumps its other end to and from the websocket until either side ends (there
    is no half-close: when one side is done, so is the other). `error(port)` is what the
    kubelet said went wrong, if anything."""

    def __init__(self, ws: websocket.WebSocket, ports: list[int]) -> None:
        self._ws = ws
        self._ports = [_Port(i, number) for i, number in enumerate(ports)]
        self._by_number = {p.number: p for p in self._ports}
        self._thread = threading.Thread(
            target=self._pump, daemon=True,
            name=f"port-forward {', '.join(str(p) for p in ports)}")
        self._thread.start()

    def socket(self, port: int) -> socket.socket:
        return self._port(port).user

    def error(self, port: int) -> str | None:
        return self._port(port).error

    def close(self) -> None:
        """Close the local sockets; the pump then closes the websocket."""
        for port in self._ports:
            with contextlib.suppress(OSError):
                port.user.close()

    def _port(self, number: int) -> _Port:
        found = self._by_number.get(number)
        if found is None:
            raise ValueError(f"port {number} is not forwarded here")
        return found

    def _pump(self) -> None:
        to_pod = bytearray()  # framed messages not yet sent
        ws_open = True
        sock = self._ws.sock
        try:
            while True:
                live = [p for p in self._ports if not p.closed]
                if not ws_open:
                    # Nothing more comes from the pod: hand over what did, then end.
                    for p in live:
                        if not p.to_user:
                            p.end()
                    live = [p for p in live if not p.closed]
                    if not live:
                        return
                elif not live and not to_pod:
                    return  # every local socket is closed and all they sent is sent
                readers: list[Any] = [p.far for p in live] if ws_open else []
                writers: list[Any] = [p.far for p in live if p.to_user]
                if ws_open and sock is not None:
                    readers.append(sock)
                    if to_pod:
                        writers.append(sock)
                if ws_open and holds_decrypted(sock):
                    readable, writable = [sock], list[Any]()
                else:
                    readable, writable, _ = select.select(readers, writers, [])
                if sock in readable:
                    ws_open = self._receive()
                for p in live:
                    if p.far in readable and not p.closed:
                        to_pod += self._read_local(p)
                    if p.far in writable and not p.closed:
                        self._write_local(p)
                if sock in writable and ws_open and to_pod:
                    sent = sock.send(to_pod) if sock is not None else 0
                    del to_pod[:sent]
        except (websocket.WebSocketException, OSError, ValueError) as e:
            for p in self._ports:
                if p.error is None and not p.closed:
                    p.error = f"port-forward tunnel failed: {e}"
        finally:
            for p in self._ports:
                p.end()
            if ws_open:
                with contextlib.suppress(Exception):
                    self._ws.send_close()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    def _receive(self) -> bool:
        """Take one message from the websocket; False when it closed."""
        try:
            opcode, frame = self._ws.recv_data_frame(True)
        except websocket.WebSocketConnectionClosedException:
            return False
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return False
        data = bytes(frame.data or b"")
        if opcode not in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) or not data:
            return True
        index, is_error = divmod(data[0], 2)
        if index >= len(self._ports):
            raise ValueError(f"message on unknown channel {data[0]}")
        port, payload = self._ports[index], data[1:]
        if not port.started[is_error]:
            if len(payload) < 2 or int.from_bytes(payload[:2], "little") != port.number:
                raise ValueError(f"channel {data[0]} did not begin with port {port.number}")
            port.started[is_error] = True
            payload = payload[2:]
        if not payload or port.closed:
            return True
        if is_error:
            # The kubelet gave up on this connection: say why, and end the local socket
            # (its reader sees the end of the stream, then reads the error).
            port.error = (port.error or "") + payload.decode(errors="replace")
            port.end()
        else:
            port.to_user += payload
        return True

    def _read_local(self, port: _Port) -> bytes:
        try:
            data = port.far.recv(CHUNK)
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:  # the local socket was closed: this connection is over
            port.end()
            return b""
        return bytes(websocket.ABNF.create_frame(bytes([port.data_channel]) + data,
                                                 websocket.ABNF.OPCODE_BINARY).format())

    def _write_local(self, port: _Port) -> None:
        if not port.flush():
            port.end()


def open_portforward(transport: Transport, namespace: str, pod: str,
                     port: int) -> PortForward:
    """A tunnel to the pod's `port`. Raises KubeError."""
    ws = connect(transport, f"/api/v1/namespaces/{namespace}/pods/{pod}/portforward",
                 [("ports", port)], [V4_CHANNEL])
    return PortForward(ws, [port])
