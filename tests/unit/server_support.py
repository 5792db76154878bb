"""Shared parts of the server tests: a fake Actions, a running server, an SSE reader."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.server.actions import ActionRefused
from devloop.server.app import RunningServer, ServerSettings, start_server


@dataclass
class FakeActions:
    """Records what the API asked; resources are the names given."""

    resources: list[str] = field(default_factory=lambda: ["api", "web"])
    calls: list[tuple[str, object]] = field(default_factory=list)
    args_allowed: bool = True

    def names(self) -> list[str]:
        return list(self.resources)

    def trigger(self, resource: str) -> None:
        if resource not in self.resources:
            raise KeyError(resource)
        self.calls.append(("trigger", resource))

    def set_enabled(self, resource: str, enabled: bool) -> None:
        if resource not in self.resources:
            raise KeyError(resource)
        self.calls.append(("enable" if enabled else "disable", resource))

    def set_args(self, args: list[str]) -> None:
        if not self.args_allowed:
            raise ActionRefused("Tiltfile args can only change in `devloop up`")
        self.calls.append(("args", args))


@dataclass
class Daemon:
    server: RunningServer
    store: Store
    logs: LogStore
    actions: FakeActions
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.server.url

    def auth(self) -> dict[str, str]:
        return {"X-Devloop-Token": self.server.token}

    async def get(self, path: str, **kwargs: object) -> tuple[int, object]:
        async with self.http.get(self.url + path, **kwargs) as response:
            return response.status, await response.json()

    async def post(self, path: str, body: object, *, token: bool = True,
                   **kwargs: object) -> tuple[int, object]:
        headers = self.auth() if token else {}
        async with self.http.post(self.url + path, json=body, headers=headers,
                                  **kwargs) as response:
            return response.status, await response.json()


@contextlib.asynccontextmanager
async def running_daemon(tmp_path: Path, *, web_dir: Path | None = None,
                         keepalive_seconds: float = 15.0,
                         store: Store | None = None,
                         settings: ServerSettings | None = None) -> AsyncIterator[Daemon]:
    store = store if store is not None else Store()
    logs, actions = LogStore(), FakeActions()
    missing = tmp_path / "no-web"
    settings = settings or ServerSettings(keepalive_seconds=keepalive_seconds)
    server = await start_server(store=store, logs=logs, actions=actions, port=0,
                                settings=settings,
                                web_dir=web_dir or missing, state_dir=tmp_path / "state")
    try:
        async with aiohttp.ClientSession() as http:
            yield Daemon(server, store, logs, actions, http)
    finally:
        await server.stop()


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[dict]:
    """The next `count` events of an SSE stream as {"id", "data"} (comments as {"comment"})."""
    events: list[dict] = []
    current: dict = {}
    while len(events) < count:
        raw = await response.content.readline()
        if not raw:
            break
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            events.append({"comment": line[1:].strip()})
        elif line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif not line and current:
            events.append(current)
            current = {}
    return events
