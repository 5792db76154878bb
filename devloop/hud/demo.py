"""A stand-alone run of the terminal UI on made-up resources: `python -m devloop.hud.demo`.

For trying the UI (and testing it in a real terminal) without a Tiltfile or a cluster.
`--stream` shows plain mode. The resources never change on their own except for log lines;
`t` on one runs a pretend update that logs and counts a build.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.engine.tasks import spawn
from devloop.hud.wiring import run_ui

RESOURCES = {
    "api": ("k8s", "ok", "ok", "", ["http://127.0.0.1:18081/"]),
    "web": ("k8s", "in_progress", "pending", "waiting for pod web-7c9d", []),
    "worker": ("k8s", "ok", "error", "CrashLoopBackOff", []),
    "migrate": ("local", "ok", "not_applicable", "", []),
}

# How often the pretend services print; slow enough to read, fast enough to look alive.
TICK_SECONDS = 1.0


class DemoActions:
    """Plays the engine's part: a trigger counts a build and logs it."""

    def __init__(self, store: Store, logs: LogStore) -> None:
        self.store, self.logs = store, logs

    def names(self) -> list[str]:
        return list(RESOURCES)

    def trigger(self, name: str) -> None:
        current = self.store.get("resource", name)
        if current is None:
            raise KeyError(name)
        builds = int(current.status.get("builds", 0)) + 1
        self.logs.append(name, f"Update #{builds} (triggered)", source="build")
        self.store.put("build", f"{name}-{builds}", spec={"resource": name, "cause": "triggered",
                                                          "files": []},
                       status={"startTime": time.time(), "duration": 0.4, "error": ""})
        self.store.update_status("resource", name, builds=builds, updateStatus="ok")

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.store.update_status("resource", name, enabled=enabled)
        self.logs.append(name, "enabled" if enabled else "disabled", source="build")


def populate(store: Store, logs: LogStore) -> None:
    now = time.time()
    for name, (kind, update, runtime, reason, links) in RESOURCES.items():
        store.put("resource", name, spec={"type": kind, "labels": [], "links": links},
                  status={"updateStatus": update, "runtimeStatus": runtime,
                          "runtimeReason": reason, "builds": 1, "enabled": True,
                          "pendingChanges": [], "waiting": "", "error": ""})
        if update != "in_progress":
            store.put("build", f"{name}-1", spec={"resource": name},
                      status={"startTime": now - 5, "duration": 2.5, "error": ""})
        logs.append(name, "Update #1 (initial update)", source="build")
        logs.append(name, f"hello from {name}", prefix=f"{name}-7c9d" if kind == "k8s" else "")
    store.put("resource", "docs", spec={"type": "local", "triggerMode": "manual"},
              status={"updateStatus": "none", "runtimeStatus": "not_applicable",
                      "builds": 0, "enabled": True, "waiting": ""})
    store.put("alert", "worker-runtime-0", spec={"resource": "worker"},
              status={"message": "container worker: CrashLoopBackOff"})


async def chatter(logs: LogStore) -> None:
    count = 0
    while True:
        await asyncio.sleep(TICK_SECONDS)
        count += 1
        logs.append("api", f"GET / 200 request #{count}", prefix="api-7c9d")


async def main(options: argparse.Namespace) -> int:
    store, logs = Store(), LogStore()
    populate(store, logs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ticker = spawn(chatter(logs), name="demo-chatter")
    try:
        await run_ui(options, store, logs, DemoActions(store, logs), "http://127.0.0.1:10350/",
                     stop)
    finally:
        ticker.cancel()
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m devloop.hud.demo")
    parser.add_argument("--stream", action="store_true", help="plain log lines")
    options = parser.parse_args()
    options.command = "up"
    return asyncio.run(main(options))


if __name__ == "__main__":
    raise SystemExit(cli())
