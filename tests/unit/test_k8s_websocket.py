"""Exec and port-forward websockets against a real local websocket server that speaks the
API server's channel protocol (aiohttp, in a thread of its own): the channel bytes, the
port prefix of a tunnel's first messages, the error channel, the exec Status, stdin's end
(v5), refused handshakes."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from devloop.k8s.client import KubeClient
from devloop.k8s.errors import KubeError
from devloop.k8s.portforward import PortForwarder, describe_failure
from devloop.k8s.streams import exec_blocking
from devloop.k8s.websocket import open_portforward

TOKEN = "s3cret"
REFUSED_PORT = 9999
DIAL_ERROR = ("error forwarding port 9999 to pod abc, uid : failed to execute portforward in "
              "network namespace \"/var/run/netns/cni-1\": failed to connect to localhost:9999 "
              "inside namespace \"abc\", IPv4: dial tcp4 127.0.0.1:9999: connect: connection "
              "refused IPv6 dial tcp6: address localhost: no suitable address")


# The subprotocols the exec route accepts, in its order of preference.
PROTOCOLS = web.AppKey("protocols", tuple[str, ...])


class ThreadedServer:
    """An aiohttp app served on 127.0.0.1 by a loop in its own thread, so blocking client
    code can talk to it from the test's thread."""

    def __init__(self, app: web.Application, ssl_context: Any = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ssl_context)
            self.loop.run_until_complete(site.start())
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        started.wait(10)
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def write_kubeconfig(path: Path, server: str, user: dict[str, Any],
                     cluster: dict[str, Any] | None = None) -> str:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "c", "user": "u",
                                                  "namespace": "shop"}}]}))
    return str(path)


def authorized(request: web.Request) -> bool:
    return request.headers.get("Authorization") == f"Bearer {TOKEN}"


def refusal(status: int, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "message": message, "reason": "Forbidden", "code": status},
                             status=status)


async def exec_handler(request: web.Request) -> web.StreamResponse:
    """`cat`: stdout is stdin (sent back in 1000-byte messages), stderr says "done";
    `fail N`: exit code N; `oops`: a Status that is no exit code."""
    if not authorized(request):
        return refusal(401, "Unauthorized")
    if request.match_info["pod"] == "gone":
        return refusal(404, 'pods "gone" not found')
    argv = request.query.getall("command")
    ws = web.WebSocketResponse(protocols=request.app[PROTOCOLS])
    await ws.prepare(request)
    stdin = bytearray()
    if request.query["stdin"] == "true":
        async for msg in ws:
            data = msg.data
            if data[0] == 0:
                stdin += data[1:]
            elif data == bytes([255, 0]):
                break  # v5: stdin closed
    for i in range(0, len(stdin), 1000):
        await ws.send_bytes(b"\x01" + bytes(stdin[i:i + 1000]))
    await ws.send_bytes(b"\x02done")
    if argv[0] == "fail":
        status: dict[str, Any] = {
            "status": "Failure", "reason": "NonZeroExitCode", "message": "exit",
            "details": {"causes": [{"reason": "ExitCode", "message": argv[1]}]}}
    elif argv[0] == "oops":
        status = {"status": "Failure", "message": "container not running", "code": 500}
    else:
        status = {"status": "Success"}
    await ws.send_bytes(b"\x03" + json.dumps(status).encode())
    await ws.close()
    return ws


async def portforward_handler(request: web.Request) -> web.StreamResponse:
    """Each channel begins with the port; data comes back upper-cased; REFUSED_PORT gets
    the kubelet's refusal on its error channel."""
    if not authorized(request):
        return refusal(401, "Unauthorized")
    if request.match_info["pod"] == "gone":
        return refusal(500, "error dialing backend: dial tcp 127.0.0.1:10250: connect: "
                            "connection refused")
    port = int(request.query["ports"])
    ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
    await ws.prepare(request)
    prefix = port.to_bytes(2, "little")
    await ws.send_bytes(b"\x00" + prefix)
    await ws.send_bytes(b"\x01" + prefix)
    if port == REFUSED_PORT:
        await ws.send_bytes(b"\x01" + DIAL_ERROR.encode())
        await ws.close()
        return ws
    async for msg in ws:
        if msg.type == WSMsgType.BINARY and msg.data[:1] == b"\x00":
            await ws.send_bytes(b"\x00" + msg.data[1:].upper())
    return ws


def make_app(protocols: tuple[str, ...] = ("v5.channel.k8s.io", "v4.channel.k8s.io"),
             ) -> web.Application:
    app = web.Application()
    app[PROTOCOLS] = protocols
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", exec_handler)
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/portforward", portforward_handler)
    return app


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Callable[..., KubeClient]]:
    servers: list[ThreadedServer] = []
    clients: list[KubeClient] = []

    def start(token: str = TOKEN, **app_options: Any) -> KubeClient:
        server = ThreadedServer(make_app(**app_options))
        servers.append(server)
        path = write_kubeconfig(tmp_path / f"config{len(servers)}",
                                f"http://127.0.0.1:{server.port}", {"token": token})
        client = KubeClient._create_blocking(path, None)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.stop()


def test_exec_collects_stdout_stderr_and_the_exit_status(api):
    kube = api()
    data = bytes(range(256)) * 1000  # more than one stdin chunk, many stdout messages
    result = exec_blocking(kube, "shop", "web-1", "app", ["cat"], data)
    assert (result.exit_code, result.stdout, result.stderr) == (0, data, b"done")
    assert exec_blocking(kube, "shop", "web-1", "app", ["fail", "3"], None).exit_code == 3


def test_exec_over_v4_works_without_stdin(api):
    kube = api(protocols=("v4.channel.k8s.io",))
    result = exec_blocking(kube, "shop", "web-1", "app", ["true"], None)
    assert (result.exit_code, result.stderr) == (0, b"done")


def test_an_exec_status_without_exit_code_is_a_temporary_error(api):
    with pytest.raises(KubeError) as caught:
        exec_blocking(api(), "shop", "web-1", "app", ["oops"], None)
    assert caught.value.temporary and caught.value.status == 500
    assert "container not running" in caught.value.message


def test_a_refused_exec_handshake_is_a_kube_error_with_its_status(api):
    with pytest.raises(KubeError) as caught:
        exec_blocking(api(), "shop", "gone", "app", ["true"], None)
    assert caught.value.status == 404
    assert caught.value.message == ('exec in shop/gone container app: the API server answered '
                                    '404: pods "gone" not found')
    with pytest.raises(KubeError) as caught:
        exec_blocking(api(token="wrong"), "shop", "web-1", "app", ["true"], None)
    assert caught.value.status == 401


def test_an_unreachable_api_server_is_a_temporary_exec_error(api, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    path = write_kubeconfig(tmp_path / "down", f"http://127.0.0.1:{port}", {"token": TOKEN})
    kube = KubeClient._create_blocking(path, None)
    with pytest.raises(KubeError) as caught:
        exec_blocking(kube, "shop", "web-1", "app", ["true"], None)
    assert caught.value.temporary and caught.value.status is None
    assert "cannot reach the API server" in caught.value.message


def test_a_tunnel_strips_the_port_prefix_and_carries_bytes_both_ways(api):
    kube = api()
    pf = open_portforward(kube.transport, "shop", "web-1", 8080)
    sock = pf.socket(8080)
    try:
        payload = b"hello " * 200_000  # more than a socket buffer each way
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        received = bytearray()
        sock.settimeout(10)
        while len(received) < len(payload):
            chunk = sock.recv(1 << 16)
            assert chunk, "the tunnel ended early"
            received += chunk
        sender.join(10)
        assert bytes(received) == payload.upper()  # no port bytes in front
        assert pf.error(8080) is None
    finally:
        pf.close()


def test_the_error_channel_ends_the_local_socket_and_says_why(api):
    pf = open_portforward(api().transport, "shop", "web-1", REFUSED_PORT)
    sock = pf.socket(REFUSED_PORT)
    sock.settimeout(10)
    try:
        assert sock.recv(1) == b""
        assert pf.error(REFUSED_PORT) == DIAL_ERROR
        assert describe_failure(DIAL_ERROR) == ("connection refused: nothing listens on port "
                                                "9999 in the pod")
    finally:
        pf.close()


async def test_a_forwarder_serves_connections_and_probes_through_the_tunnel(api):
    kube = api()
    errors: list[Any] = []
    forwarder = PortForwarder(kube, on_error=errors.append)
    await forwarder.start("shop", "web-1", 0, 8080)
    try:
        assert await forwarder.probe() == ""
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.local_port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 10) == b"PING"
        writer.close()
        forwarder.retarget("shop", "gone")
        assert await forwarder.probe() == (
            "the kubelet is unreachable (the API server answered 500: error dialing backend: "
            "dial tcp 127.0.0.1:10250: connect: connection refused)")
    finally:
        await forwarder.stop()
    assert errors == []


async def test_a_forwarded_connection_to_a_closed_port_is_reported(api):
    errors: list[Any] = []
    forwarder = PortForwarder(api(), on_error=errors.append)
    await forwarder.start("shop", "web-1", 0, REFUSED_PORT)
    try:
        assert await forwarder.probe() == ("connection refused: nothing listens on port 9999 "
                                           "in the pod")
        reader, writer = await asyncio.open_connection("127.0.0.1", forwarder.local_port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.05)
    finally:
        await forwarder.stop()
    assert [e.message for e in errors] == [
        "connection refused: nothing listens on port 9999 in the pod"]
