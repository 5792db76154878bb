"""The SPDY port-forward session against a scripted server on a socket pair: the frames it
sends, and what it makes of the kubelet's (the real API server: test_adapters)."""

from __future__ import annotations

import socket
import struct
import zlib
from types import SimpleNamespace

import pytest

from devloop.k8s import portforward
from devloop.k8s.errors import KubeError
from devloop.k8s.spdy import (
    FLAG_FIN,
    GOAWAY,
    PING,
    RST_STREAM,
    SYN_REPLY,
    SYN_STREAM,
    Frame,
    FrameReader,
    SpdySession,
    UpgradeRefused,
    control_frame,
    data_frame,
    header_block,
)


def _headers(decompressor: zlib._Decompress, payload: bytes) -> dict[str, str]:
    """A SYN_STREAM's headers (after its stream IDs, priority and slot)."""
    raw = decompressor.decompress(payload[10:])
    count, at, found = struct.unpack_from(">I", raw)[0], 4, {}
    for _ in range(count):
        pair = []
        for _ in range(2):
            size = struct.unpack_from(">I", raw, at)[0]
            pair.append(raw[at + 4:at + 4 + size].decode())
            at += 4 + size
        found[pair[0]] = pair[1]
    return found


class Kubelet:
    """The server's end: reads the session's frames, writes its own."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(5)
        self.reader = FrameReader()
        self.frames: list[Frame] = []
        self.decompressor = zlib.decompressobj()

    def expect(self, count: int) -> list[Frame]:
        while len(self.frames) < count:
            chunk = self.sock.recv(65536)
            assert chunk, "the session closed its connection"
            self.frames += self.reader.feed(chunk)
        taken, self.frames = self.frames[:count], self.frames[count:]
        return taken

    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))


def _reply(stream: int) -> bytes:
    return control_frame(SYN_REPLY, 0, struct.pack(">I", stream) + zlib.compress(b""))


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture
def session_and_kubelet():
    ours, theirs = socket.socketpair()
    session = SpdySession(ours, b"", "ns/pod")
    yield session, Kubelet(theirs)
    session.close()
    theirs.close()


def test_header_blocks_are_spdy3_pairs_in_one_zlib_stream():
    compressor, decompressor = zlib.compressobj(), zlib.decompressobj()
    for request in ("0", "1"):  # the second block depends on the first's stream
        block = header_block(compressor, {"streamType": "data", "port": "8080",
                                          "requestID": request})
        assert _headers(decompressor, b"\0" * 10 + block) == {
            "streamtype": "data", "port": "8080", "requestid": request}


def test_frames_are_read_from_pieces_of_any_size():
    stream = (control_frame(PING, 0, struct.pack(">I", 7))
              + data_frame(3, FLAG_FIN, b"hello") + data_frame(5, 0, b""))
    reader, frames = FrameReader(), []
    for byte in stream:
        frames += reader.feed(bytes([byte]))
    assert frames == [Frame(True, PING, 0, 0, struct.pack(">I", 7)),
                      Frame(False, 0, 3, FLAG_FIN, b"hello"), Frame(False, 0, 5, 0, b"")]


def test_a_connection_is_an_error_stream_and_a_data_stream_paired(session_and_kubelet):
    session, kubelet = session_and_kubelet
    tunnel = session.tunnel(8080)
    error, data = kubelet.expect(2)
    assert (error.control, error.kind, error.stream, error.flags) == (True, SYN_STREAM, 1,
                                                                      FLAG_FIN)
    assert (data.kind, data.stream, data.flags) == (SYN_STREAM, 3, 0)
    assert _headers(kubelet.decompressor, error.payload) == {
        "streamtype": "error", "port": "8080", "requestid": "0"}
    assert _headers(kubelet.decompressor, data.payload) == {
        "streamtype": "data", "port": "8080", "requestid": "0"}

    local = tunnel.socket(8080)
    local.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert kubelet.expect(1) == [Frame(False, 0, 3, 0, b"GET / HTTP/1.0\r\n\r\n")]
    # The pod answers and ends; the kubelet then closes the error stream, saying nothing.
    kubelet.send(_reply(1), _reply(3), data_frame(3, 0, b"HTTP/1.0 200 OK\r\n\r\nhi"),
                 data_frame(3, FLAG_FIN, b""), data_frame(1, FLAG_FIN, b""))
    assert _read_all(local) == b"HTTP/1.0 200 OK\r\n\r\nhi"
    assert tunnel.error(8080) is None
    # Both streams are freed on the server too; the next connection has new ones.
    assert {(f.kind, f.stream) for f in kubelet.expect(2)} == {(RST_STREAM, 1), (RST_STREAM, 3)}
    session.tunnel(8080)
    assert [(f.kind, f.stream) for f in kubelet.expect(2)] == [(SYN_STREAM, 5), (SYN_STREAM, 7)]


def test_a_refused_dial_is_said_after_the_data_stream_ends(session_and_kubelet):
    """The kubelet ends the data stream first, then writes why on the error stream."""
    session, kubelet = session_and_kubelet
    tunnel = session.tunnel(9999)
    kubelet.expect(2)
    reason = ("error forwarding port 9999 to pod p, uid u: failed to connect to localhost:9999"
              " inside namespace n, IPv4: dial tcp4 127.0.0.1:9999: connect: connection "
              "refused IPv6 dial tcp6 [::1]:9999: connect: connection refused ")
    kubelet.send(data_frame(3, FLAG_FIN, b""), data_frame(1, 0, reason.encode()),
                 data_frame(1, FLAG_FIN, b""))
    assert _read_all(tunnel.socket(9999)) == b""
    assert tunnel.error(9999) == reason
    assert portforward.describe_failure(reason) == (
        "connection refused: nothing listens on port 9999 in the pod")
    # The server's side serves no new connection after an error: the next one needs a
    # session of its own.
    assert not session.accepting
    with pytest.raises(KubeError, match="has ended"):
        session.tunnel(9999)


def test_pings_are_answered_and_a_reset_ends_the_connection(session_and_kubelet):
    session, kubelet = session_and_kubelet
    tunnel = session.tunnel(8080)
    kubelet.expect(2)
    kubelet.send(control_frame(PING, 0, struct.pack(">I", 2)))
    assert kubelet.expect(1) == [Frame(True, PING, 0, 0, struct.pack(">I", 2))]
    kubelet.send(control_frame(RST_STREAM, 0, struct.pack(">II", 3, 1)))
    assert _read_all(tunnel.socket(8080)) == b""
    assert tunnel.error(8080) == "the kubelet reset the connection (status 1)"


def test_a_local_close_frees_the_streams(session_and_kubelet):
    session, kubelet = session_and_kubelet
    tunnel = session.tunnel(8080)
    kubelet.expect(2)
    tunnel.close()
    assert {(f.kind, f.stream) for f in kubelet.expect(2)} == {(RST_STREAM, 1), (RST_STREAM, 3)}


def test_after_goaway_or_a_lost_connection_the_session_takes_no_tunnels(session_and_kubelet):
    session, kubelet = session_and_kubelet
    open_one = session.tunnel(8080)
    kubelet.expect(2)
    kubelet.send(control_frame(GOAWAY, 0, struct.pack(">II", 0, 0)))
    kubelet.send(control_frame(PING, 0, struct.pack(">I", 4)))
    kubelet.expect(1)  # the GOAWAY before it has been read
    assert not session.accepting
    with pytest.raises(KubeError, match="has ended"):
        session.tunnel(8080)
    kubelet.sock.close()
    assert _read_all(open_one.socket(8080)) == b""
    assert open_one.error(8080) == ("port-forward tunnel failed: the API server closed the "
                                    "port-forward session")


def test_a_server_that_refuses_spdy_leaves_the_forward_on_websockets(monkeypatch):
    opened: list[str] = []

    def refuse(transport, namespace, pod):
        opened.append("spdy")
        raise UpgradeRefused("the API server answered 400: cannot upgrade", status=400)

    def websocket(transport, namespace, pod, port):
        opened.append("websocket")
        return SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(portforward, "open_session", refuse)
    monkeypatch.setattr(portforward, "open_portforward", websocket)
    client = SimpleNamespace(transport=SimpleNamespace(config=SimpleNamespace(proxy_url="")))
    forwarder = portforward.PortForwarder(client)  # type: ignore[arg-type]
    forwarder.remote_port = 8080
    forwarder._open("ns", "pod")
    forwarder._open("ns", "pod")
    assert opened == ["spdy", "websocket", "websocket"]
