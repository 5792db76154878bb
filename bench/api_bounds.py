"""Benchmark: the API server's memory and CPU under big logs, slow clients and vanished clients.

How: each scenario starts a fresh child process that plays the daemon: the real API server
(`devloop.server.start_server`) over a LogStore with the default byte budget. The parent talks
to it over HTTP and raw sockets, tells it (on its stdin) when to append log lines, and reads its
memory (VmRSS) and CPU time (utime+stime) from /proc. Scenarios:
* budget: one resource is filled with twice the default budget of 40-character lines; the
  RSS growth is what the kept lines cost, shown against the text bytes kept;
* plain GET: `GET /api/v1/logs` with no parameters over 3 resources with full budgets (short
  lines):
  response size and time, and the worst latency of `GET /api/v1` polled every 20 ms meanwhile
  (how long the daemon's loop was blocked);
* slow client: a follow (`/api/v1/logs?follow=1`) whose client never reads while 200,000 lines
  are appended: RSS growth of the daemon, and whether the server dropped the client;
* vanished clients: 200 follows with a filter that matches nothing and 200 watches of a kind
  that never changes are opened, then their sockets closed; then 20,000 lines/s are appended
  for 5 s: the daemon's CPU use in that window, the worst `GET /api/v1` latency, and the
  number of event streams still open after it (when the server reports it).

    python bench/api_bounds.py [budget|plain|slow|vanished ...]
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SCENARIOS = ("budget", "plain", "slow", "vanished")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- the daemon side (child process): commands on stdin, one answer line each

async def serve() -> None:
    from devloop.engine.logs import LogStore
    from devloop.engine.store import Store
    from devloop.server import start_server

    class NoActions:
        def names(self) -> list[str]:
            return []

        def trigger(self, resource: str) -> None: ...

        def set_enabled(self, resource: str, enabled: bool) -> None: ...

        def set_args(self, args: list[str]) -> None: ...

    store, logs = Store(), LogStore()
    store.put("resource", "svc-0", spec={}, status={})
    server = await start_server(store=store, logs=logs, actions=NoActions(),
                                host="127.0.0.1", port=0, write_file=False)
    print(json.dumps({"url": server.url}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    counter = 0
    while line := await reader.readline():
        words = line.decode().split()
        if words[0] == "append":  # append COUNT RESOURCES WIDTH
            count, resources, width = (int(word) for word in words[1:])
            for index in range(count):
                counter += 1
                text = f"line {counter:09d} " + "x" * max(0, width - 15)
                logs.append(f"svc-{index % resources}", text[:width])
                if index % 5000 == 4999:
                    await asyncio.sleep(0)  # let streams run, as a busy engine would
        elif words[0] == "produce":  # produce RATE SECONDS: steady lines, in 10 ms batches
            rate, seconds = int(words[1]), float(words[2])
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for _ in range(rate // 100):
                    counter += 1
                    logs.append("svc-0", f"line {counter:09d} GET /api/items 200 in 3ms")
                await asyncio.sleep(0.01)
        print("ok", flush=True)


class Daemon:
    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--serve"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        assert self.process.stdout is not None
        self.url = json.loads(self.process.stdout.readline())["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.pid = self.process.pid

    def command(self, text: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def rss_mib(self) -> float:
        return status_kib(self.pid, "VmRSS") / 1024

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310
        return response.read()


def open_stream(port: int, path: str) -> socket.socket:
    """A client that sends its request and then never reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


async def worst_latency(url: str, during: asyncio.Future[object]) -> float:
    """The slowest `GET /api/v1` answer, polled every 20 ms until `during` completes."""
    worst = 0.0
    while not during.done():
        start = time.perf_counter()
        await asyncio.to_thread(get, url + "/api/v1")
        worst = max(worst, time.perf_counter() - start)
        await asyncio.sleep(0.02)
    return worst


def budget() -> None:
    from devloop.engine.logs import DEFAULT_BUDGET_BYTES

    daemon = Daemon()
    try:
        before = daemon.rss_mib()
        lines = 2 * DEFAULT_BUDGET_BYTES // 41
        daemon.command(f"append {lines} 1 40")
        after = daemon.rss_mib()
        body = json.loads(get(daemon.url + "/api/v1/logs?resource=svc-0&limit=1"))
        kept = body["lines"][-1]["seq"] - body["dropped"].get("svc-0", 0)
        print(f"budget: {lines} lines of 40 characters appended to one resource; "
              f"{kept} kept ({kept * 41 / 2**20:.1f} MiB of text with newlines)")
        print(f"  daemon RSS {before:.1f} MiB -> {after:.1f} MiB: "
              f"+{after - before:.1f} MiB for the default {DEFAULT_BUDGET_BYTES >> 20} MiB budget")
    finally:
        daemon.stop()


async def plain() -> None:
    daemon = Daemon()
    try:
        daemon.command("append 630000 3 40")
        rss = daemon.rss_mib()
        start = time.perf_counter()
        fetch = asyncio.ensure_future(asyncio.to_thread(get, daemon.url + "/api/v1/logs"))
        worst = await worst_latency(daemon.url, fetch)
        body = await fetch
        took = time.perf_counter() - start
        lines = len(json.loads(body)["lines"])
        print(f"plain GET /api/v1/logs over 3 resources with full budgets (RSS {rss:.0f} MiB): "
              f"{len(body) / 2**20:.1f} MiB, {lines} lines in {took:.2f} s; "
              f"worst GET /api/v1 meanwhile {worst * 1000:.0f} ms")
    finally:
        daemon.stop()


def slow() -> None:
    daemon = Daemon()
    try:
        sock = open_stream(daemon.port, "/api/v1/logs?follow=1")
        time.sleep(0.5)
        before = daemon.rss_mib()
        daemon.command("append 200000 1 40")
        time.sleep(1)
        after = daemon.rss_mib()
        sock.setblocking(False)
        dropped = False
        try:  # the server's close shows as EOF once what it had sent is read
            while chunk := sock.recv(1 << 20):
                dropped = dropped or b"too slow" in chunk or b"event: error" in chunk
            dropped = True
        except BlockingIOError:
            pass
        sock.close()
        print(f"slow client: a follow that never reads while 200,000 lines are appended: "
              f"RSS {before:.1f} -> {after:.1f} MiB (+{after - before:.1f}); "
              f"client dropped by the server: {'yes' if dropped else 'no'}")
    finally:
        daemon.stop()


async def vanished() -> None:
    daemon = Daemon()
    try:
        daemon.command("produce 20000 5")
        cpu = cpu_seconds(daemon.pid)
        producing = asyncio.ensure_future(asyncio.to_thread(daemon.command, "produce 20000 5"))
        await worst_latency(daemon.url, producing)  # the same polling as below, for fairness
        await producing
        baseline = cpu_seconds(daemon.pid) - cpu
        socks = [open_stream(daemon.port, "/api/v1/logs?follow=1&q=nomatch")
                 for _ in range(200)]
        socks += [open_stream(daemon.port, "/api/v1/nothing?watch=1") for _ in range(200)]
        time.sleep(1)
        for sock in socks:
            sock.close()
        time.sleep(1)
        cpu = cpu_seconds(daemon.pid)
        producing = asyncio.ensure_future(asyncio.to_thread(daemon.command, "produce 20000 5"))
        worst = await worst_latency(daemon.url, producing)
        await producing
        used = cpu_seconds(daemon.pid) - cpu
        kinds = json.loads(get(daemon.url + "/api/v1"))
        print(f"vanished clients: 400 closed streams, then 20,000 lines/s for 5 s: daemon CPU "
              f"{used:.2f} s (no clients ever: {baseline:.2f} s); worst GET /api/v1 "
              f"{worst * 1000:.0f} ms; streams still open: {kinds.get('openStreams', 'n/a')}")
    finally:
        daemon.stop()


def main() -> None:
    if sys.argv[1:] == ["--serve"]:
        asyncio.run(serve())
        return
    chosen = sys.argv[1:] or list(SCENARIOS)
    for name in chosen:
        if name == "budget":
            budget()
        elif name == "plain":
            asyncio.run(plain())
        elif name == "slow":
            slow()
        elif name == "vanished":
            asyncio.run(vanished())
        else:
            raise SystemExit(f"unknown scenario {name!r}: use {', '.join(SCENARIOS)}")


if __name__ == "__main__":
    main()
