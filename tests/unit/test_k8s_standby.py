"""A command started ahead in a container (live update's `tar -x`) against a real local
websocket server that speaks the API server's exec protocol: the next run uses it, one
that ended meanwhile is replaced by a fresh start, a failing command is not kept waiting,
closing ends what waits."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from devloop.k8s.client import KubeClient
from devloop.k8s.standby import StandbyCommands
from tests.unit.test_k8s_websocket import ThreadedServer, write_kubeconfig

TOKEN = "t0ken"
SUCCESS = {"status": "Success"}


@dataclass
class ExecServer:
    """Counts the execs started, and can end the ones that wait for stdin."""

    started: int = 0
    exit_code: int = 0
    waiting: list[web.WebSocketResponse] = field(default_factory=list)


SERVER = web.AppKey("server", ExecServer)


async def echo_exec(request: web.Request) -> web.StreamResponse:
    """The command's stdout is its stdin, sent back once stdin ends (v5); the exit code is
    the server's."""
    server = request.app[SERVER]
    server.started += 1
    ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",))
    await ws.prepare(request)
    # As the API server does: an empty first frame on stdout and on stderr.
    await ws.send_bytes(b"\x01")
    await ws.send_bytes(b"\x02")
    server.waiting.append(ws)
    stdin = bytearray()
    async for msg in ws:
        if msg.data[0] == 0:
            stdin += msg.data[1:]
        elif msg.data == bytes([255, 0]):
            break
    if ws in server.waiting:
        server.waiting.remove(ws)
    if ws.closed:
        return ws
    await ws.send_bytes(b"\x01" + bytes(stdin))
    status = SUCCESS if server.exit_code == 0 else {
        "status": "Failure", "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(server.exit_code)}]}}
    await ws.send_bytes(b"\x03" + json.dumps(status).encode())
    await ws.close()
    return ws


@dataclass
class Setup:
    state: ExecServer
    server: ThreadedServer
    standby: StandbyCommands

    def end_waiting(self) -> None:
        """The container restarted: its waiting command ends with an error Status."""
        async def end() -> None:
            for ws in list(self.state.waiting):
                self.state.waiting.remove(ws)
                await ws.send_bytes(b"\x03" + json.dumps({
                    "status": "Failure", "message": "container restarted"}).encode())
                await ws.close()
        asyncio.run_coroutine_threadsafe(end(), self.server.loop).result(10)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    state = ExecServer()
    app = web.Application()
    app[SERVER] = state
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", echo_exec)
    server = ThreadedServer(app)
    path = write_kubeconfig(tmp_path / "config", f"http://127.0.0.1:{server.port}",
                            {"token": TOKEN})
    client = KubeClient._create_blocking(path, None)
    standby = StandbyCommands(client, ("cat",))
    try:
        yield Setup(state, server, standby)
    finally:
        standby.close()
        client.close()
        server.stop()


WHERE = ("shop", "api-1", "api")


def test_the_next_run_uses_the_command_started_ahead(setup: Setup) -> None:
    first = setup.standby.run(*WHERE, b"one")
    assert (first.exit_code, first.stdout) == (0, b"one")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    assert setup.state.started == 2  # the run, and the next one started ahead

    second = setup.standby.run(*WHERE, b"two")
    assert (second.exit_code, second.stdout) == (0, b"two")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    assert setup.state.started == 3  # only the next one, started ahead again


def test_a_waiting_command_that_ended_is_replaced_by_a_fresh_start(setup: Setup) -> None:
    setup.standby.run(*WHERE, b"one")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    setup.end_waiting()

    result = setup.standby.run(*WHERE, b"two")
    assert (result.exit_code, result.stdout) == (0, b"two")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    assert setup.state.started == 4  # 2 + a fresh start + the next one ahead


def test_a_command_that_fails_is_not_kept_waiting(setup: Setup) -> None:
    setup.state.exit_code = 2
    result = setup.standby.run(*WHERE, b"one")
    assert result.exit_code == 2
    time.sleep(0.2)  # long enough for a start ahead to arrive, if one were made
    assert setup.state.started == 1
    assert setup.standby.waiting_in() == []


def test_a_failure_on_the_waiting_command_is_tried_again_on_a_fresh_one(
        setup: Setup) -> None:
    setup.standby.run(*WHERE, b"one")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    setup.state.exit_code = 1
    result = setup.standby.run(*WHERE, b"two")
    assert result.exit_code == 1  # what the fresh start said is the answer
    assert setup.state.started == 3


def test_closing_ends_the_waiting_commands(setup: Setup) -> None:
    setup.standby.run(*WHERE, b"one")
    wait_until(lambda: setup.standby.waiting_in() == [WHERE])
    setup.standby.close()
    assert setup.standby.waiting_in() == []
    wait_until(lambda: setup.state.waiting == [])  # the server saw the connection end
