"""Event streams under slow and vanished clients: bounded per-client buffers, a clear close for
a client that falls behind, handlers that end when their client goes; bounded log pages."""

from __future__ import annotations

import asyncio
import socket

from devloop.engine.logs import LogStore
from devloop.server.app import ServerSettings
from devloop.server.logs_api import DEFAULT_LIMIT, LogQuery
from tests.unit.server_support import running_daemon

# A small buffer and quick checks, so the tests need few lines and little waiting.
SMALL = ServerSettings(buffer_bytes=64 * 1024, send_timeout_seconds=0.5, liveness_seconds=0.05)
# Guards against a hang on the code before the fix; nothing here is timed.
GUARD_SECONDS = 20


async def open_stream(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client with a tiny receive buffer that reads only the response head."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    return reader, writer


async def read_to_end(reader: asyncio.StreamReader) -> bytes:
    data = b""
    try:
        while chunk := await reader.read(1 << 16):
            data += chunk
    except ConnectionResetError:
        pass  # aborted by the server: also an end
    return data


async def open_streams(daemon) -> int:
    return (await daemon.get("/api/v1"))[1]["openStreams"]


async def wait_until_no_stream(daemon) -> None:
    while await open_streams(daemon):
        await asyncio.sleep(0.02)


def chatty(logs: LogStore, count: int, resource: str = "api") -> None:
    for index in range(count):
        logs.append(resource, f"line {index:06d} " + "x" * 90)


async def test_a_follower_that_falls_behind_gets_an_error_event_and_is_closed(tmp_path):
    async with running_daemon(tmp_path, settings=SMALL) as daemon:
        reader, writer = await open_stream(daemon.server.port, "/api/v1/logs?follow=1")
        chatty(daemon.logs, 2000)  # 200 KB at once: more than the client's 64 KiB buffer
        data = await asyncio.wait_for(read_to_end(reader), GUARD_SECONDS)
        writer.close()
        assert b"event: error" in data and b"client too slow" in data
        assert b"resume with since=" in data
        await asyncio.wait_for(wait_until_no_stream(daemon), GUARD_SECONDS)


async def test_a_follower_that_never_reads_is_dropped_and_costs_no_more(tmp_path):
    async with running_daemon(tmp_path, settings=SMALL) as daemon:
        _, writer = await open_stream(daemon.server.port, "/api/v1/logs?follow=1")
        for _ in range(20):  # lines keep coming, the client's socket stays full
            chatty(daemon.logs, 500)
            await asyncio.sleep(0.05)
        await asyncio.wait_for(wait_until_no_stream(daemon), GUARD_SECONDS)
        assert daemon.logs._listeners == []  # nothing queues for it any more
        writer.close()


async def test_a_watcher_that_never_reads_is_dropped(tmp_path):
    async with running_daemon(tmp_path, settings=SMALL) as daemon:
        _, writer = await open_stream(daemon.server.port, "/api/v1/pod?watch=1")
        for index in range(3000):
            daemon.store.put("pod", f"pod-{index}", spec={"padding": "x" * 3000}, status={})
            if index % 100 == 0:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(wait_until_no_stream(daemon), GUARD_SECONDS)
        writer.close()


async def test_streams_whose_filter_matches_nothing_end_when_their_clients_go(tmp_path):
    async with running_daemon(tmp_path, settings=SMALL) as daemon:
        clients = [await open_stream(daemon.server.port, path) for path in (
            ["/api/v1/logs?follow=1&q=nomatch"] * 5 + ["/api/v1/nothing?watch=1"] * 5)]
        assert await open_streams(daemon) == 10
        for _, writer in clients:
            writer.close()
        # Lines keep coming and none matches: no write would ever notice the client left.
        for _ in range(200):
            chatty(daemon.logs, 10)
            daemon.store.put("pod", "p", spec={}, status={"n": daemon.store.version})
            if not await open_streams(daemon):
                break
            await asyncio.sleep(0.02)
        assert await open_streams(daemon) == 0
        assert daemon.logs._listeners == []


async def test_a_plain_logs_request_is_one_bounded_page_and_pages_reach_every_line(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        chatty(daemon.logs, 3000, "api")
        chatty(daemon.logs, 1500, "web")
        status, body = await daemon.get("/api/v1/logs")
        assert status == 200 and len(body["lines"]) == DEFAULT_LIMIT and body["more"]
        assert body["last"] == 4500 == body["lines"][-1]["seq"]
        seen = [line["seq"] for line in body["lines"]]
        while body["more"]:
            body = (await daemon.get(f"/api/v1/logs?limit=1700&before={seen[0]}"))[1]
            seen[:0] = [line["seq"] for line in body["lines"]]
        assert seen == list(range(1, 4501))


async def test_a_follow_backlog_is_bounded_too(tmp_path):
    async with running_daemon(tmp_path) as daemon:
        chatty(daemon.logs, 3000)
        async with daemon.http.get(f"{daemon.url}/api/v1/logs?follow=1&limit=5") as response:
            daemon.logs.append("api", "live line")
            seqs = []
            while len(seqs) < 6:
                line = (await response.content.readline()).decode()
                if line.startswith("id: "):
                    seqs.append(int(line[4:]))
        assert seqs == [2996, 2997, 2998, 2999, 3000, 3001]


async def test_a_search_over_every_line_lets_the_loop_run_between_chunks():
    logs = LogStore(budget_bytes=1 << 30)
    chatty(logs, 100000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    query = LogQuery.parse(_Request({"q": "nothing matches this"}))
    lines, more = await query.select(logs)
    task.cancel()
    assert (lines, more) == ([], False)
    assert ticks > 5  # the search paused for the rest of the loop several times


class _Request:
    """What LogQuery.parse reads of a request."""

    def __init__(self, query: dict[str, str]) -> None:
        self.query = query
        self.headers: dict[str, str] = {}
