"""The daemon's HTTP server: every store object by kind and name, watches, logs, actions, and
the dashboard's static files.

Routes (all JSON unless said otherwise):
  GET  /api/v1                       kinds in the store with their object counts
  GET  /api/v1/kinds                 every kind the daemon publishes, its fields and columns
  GET  /api/v1/{kind}[?watch=1]      a list, or server-sent events of its changes
  GET  /api/v1/{kind}/{name}         one object
  GET  /api/v1/watch                 events of every kind (also /api/v1/all?watch=1)
  GET  /api/v1/logs                  see logs_api
  GET  /api/v1/snapshot              the dashboard as one HTML file (devloop.snapshot)
  GET  /api/v1/openapi.json          the API's OpenAPI description (see openapi)
  POST /api/v1/actions/...           see actions (token required)
  GET  /                             the dashboard page, its files and state inline, with the
                                     token in a <meta> tag
  GET  /static/...                   the dashboard's files
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import importlib.resources
import logging
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from devloop.engine.alerts import publisher_of
from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.engine.tasks import report_to
from devloop.model.kinds import KINDS
from devloop.server.actions import Actions, ActionsApi
from devloop.server.daemon_file import daemon_file, remove_daemon_file, write_daemon_file
from devloop.server.logs_api import LogsApi
from devloop.server.openapi import describe
from devloop.server.outbox import StreamSettings
from devloop.server.security import WILDCARD_HOSTS, Guard, add_security_headers
from devloop.server.watch import ALL_KINDS, ChangeFeed, resume_version, stream_changes
from devloop.snapshot.bundle import BundleError
from devloop.snapshot.page import PageError, one_document
from devloop.snapshot.render import data_json
from devloop.snapshot.route import snapshot_handler

DEFAULT_PORT = 10350
SESSION_LOG = "(Tiltfile)"  # the session's own log, where the server's failures go
# Kinds the engine publishes (devloop.model.kinds); a plural (`pods`) names the same kind.
KNOWN_KINDS = tuple(KINDS)
NOT_INSTALLED_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>devloop</title></head>
<body><h1>devloop</h1><p>The web dashboard is not installed. The API is at
<a href="/api/v1">/api/v1</a>.</p></body></html>
"""


@dataclass(frozen=True)
class ServerSettings(StreamSettings):
    """The server's tunables: today those of its event streams (see StreamSettings)."""


class Streams:
    """The open event streams, so the server can end them cleanly when it stops (aiohttp
    would otherwise wait for them, and a cancelled stream ends without its last chunk)."""

    # Streams end within a write once `closing` is set; one that cannot (a client that stops
    # reading) is cancelled after this grace. A round figure, not a measured one.
    GRACE_SECONDS = 2.0

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def close(self) -> None:
        self.closing.set()
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self.GRACE_SECONDS)
            for task in late:
                task.cancel()


class _QuietBadRequests(logging.Filter):
    """A request that is not valid HTTP is the client's mistake, which aiohttp answers with a
    400; it logs it with a traceback, which would land in the user's terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, HttpProcessingError)


HTTP_LOG = logging.getLogger("devloop.server.http")
HTTP_LOG.addFilter(_QuietBadRequests())


def web_root() -> Path | None:
    """The dashboard's files: `devloop/web` inside an installed wheel, or the repository's
    top-level `web/` in a source checkout or editable install."""
    candidates: list[Path] = []
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        candidates.append(Path(str(importlib.resources.files("devloop") / "web")))
    candidates.append(Path(__file__).resolve().parents[2] / "web")
    for candidate in candidates:
        if (candidate / "index.html").is_file():
            return candidate
    return None


def inject_token(page: str, token: str) -> str:
    meta = f'<meta name="devloop-token" content="{html.escape(token, quote=True)}">'
    return _after_head(page, meta)


STATE_ELEMENT_ID = "devloop-state"


def inject_state(page: str, version: int, objects: list[dict[str, Any]]) -> str:
    """The store's objects in the page, with the version its watch resumes from: the
    dashboard paints them at once instead of waiting for a stream to replay them one
    event at a time (300 resources: hundreds of events and the renders between them)."""
    data = data_json({"version": version, "objects": objects})
    element = f'<script type="application/json" id="{STATE_ELEMENT_ID}">{data}</script>'
    # At the end of the body: the parser reaches the stylesheet and the scripts in the head
    # (and starts fetching them) before it reads through the data.
    end = page.lower().rfind("</body")
    return page[:end] + element + page[end:] if end >= 0 else page + element


def _after_head(page: str, element: str) -> str:
    match = re.search(r"<head[^>]*>", page, re.IGNORECASE)
    if match:
        return page[:match.end()] + element + page[match.end():]
    return element + page


def normalize_kind(kind: str, present: list[str]) -> str:
    kind = kind.lower()
    if kind in present or kind in KNOWN_KINDS or kind == ALL_KINDS:
        return kind
    for stem in (kind[:-2] if kind.endswith("es") else "", kind[:-1] if kind.endswith(
            "s") else ""):
        if stem and (stem in present or stem in KNOWN_KINDS):
            return stem
    return kind


def _not_found(message: str) -> web.Response:
    return web.json_response({"error": message}, status=404)


class ResourceApi:
    def __init__(self, store: Store, feed: ChangeFeed, settings: StreamSettings,
                 streams: Streams) -> None:
        self.store = store
        self.feed = feed
        self.settings = settings
        self.streams = streams

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1", self.kinds), web.get("/api/v1/", self.kinds),
                web.get("/api/v1/openapi.json", self.openapi),
                web.get("/api/v1/watch", self.watch_all),
                web.get("/api/v1/kinds", self.kind_list),
                web.get("/api/v1/{kind}", self.list),
                # /api/v1/actions/... are POST-only: a GET there is a 405, not a lookup.
                web.get(r"/api/v1/{kind:(?!actions/)[^/]+}/{name}", self.get)]

    async def kinds(self, request: web.Request) -> web.Response:
        return web.json_response({
            "resourceVersion": str(self.store.version),
            "kinds": [{"kind": kind, "count": len(self.store.list(kind))}
                      for kind in self.store.kinds()],
            "openStreams": len(self.streams)})

    async def kind_list(self, request: web.Request) -> web.Response:
        """Every kind the daemon publishes: its fields and the columns to show it with."""
        return web.json_response({"kinds": [kind.to_json() for kind in KINDS.values()]})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(describe())

    async def _stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        with self.streams.track():
            return await stream_changes(request, self.feed, kind, closing=self.streams.closing,
                                        settings=self.settings)

    async def watch_all(self, request: web.Request) -> web.StreamResponse:
        return await self._stream(request, ALL_KINDS)

    async def list(self, request: web.Request) -> web.StreamResponse:
        kind = normalize_kind(request.match_info["kind"], self.store.kinds())
        if request.query.get("watch", "") not in ("", "0", "false"):
            return await self._stream(request, kind)
        resume_version(request, "resourceVersion")  # unused by a list, but never wrong
        objects = list(self.store) if kind == ALL_KINDS else self.store.list(kind)
        return web.json_response({"kind": kind, "resourceVersion": str(self.store.version),
                                  "items": [obj.to_json() for obj in objects]})

    async def get(self, request: web.Request) -> web.Response:
        kind = normalize_kind(request.match_info["kind"], self.store.kinds())
        name = request.match_info["name"]
        obj = self.store.get(kind, name)
        if obj is None:
            return _not_found(f"no {kind} {name!r}")
        return web.json_response(obj.to_json())


def _one_document(web_dir: Path) -> str:
    """The page with its files inline (devloop.snapshot.page), read again for each request so
    an edit to web/ shows on a reload. Should a module be one the bundler refuses, the page as
    written, which fetches its files from /static/, works as well, if slower."""
    try:
        return one_document(web_dir)
    except (BundleError, PageError):
        return (web_dir / "index.html").read_text(encoding="utf-8")


class DashboardFiles:
    def __init__(self, token: str, root: Path | None, feed: ChangeFeed | None = None) -> None:
        """`feed`: the store's state to put in the page (none: the page watches for it)."""
        self.token = token
        self.root = root
        self.feed = feed

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/static/{path:.*}", self.static), web.get("/", self.index),
                web.get("/{path:(?!api/|static/).*}", self.index)]

    async def index(self, request: web.Request) -> web.Response:
        """The page, for `/` and any other non-API path, so the dashboard may route by path."""
        index = self.root / "index.html" if self.root else None
        installed = index is not None and index.is_file()
        page = _one_document(self.root) if self.root and installed else NOT_INSTALLED_PAGE
        if installed and self.feed is not None:
            page = inject_state(page, *self.feed.current())
        return web.Response(text=inject_token(page, self.token), content_type="text/html",
                            headers={"Cache-Control": "no-store"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        if self.root is None or not self.root.is_dir():
            return _not_found("the web dashboard is not installed")
        name = request.match_info["path"]
        root = self.root.resolve()
        try:
            target = (root / name).resolve()
            found = target.is_relative_to(root) and target.is_file()
        except (OSError, ValueError):  # a NUL byte, a name too long for the file system
            found = False
        if not found:
            return _not_found(f"no file {name[:200]!r}")
        return web.FileResponse(target)


def build_app(*, store: Store, logs: LogStore, actions: Actions, guard: Guard,
              feed: ChangeFeed, settings: ServerSettings = ServerSettings(),
              web_dir: Path | None = None,
              streams: Streams | None = None) -> web.Application:
    """`streams` tracks the event streams, for the server to end them."""
    streams = Streams() if streams is None else streams
    app = web.Application(middlewares=[_json_errors, guard.middleware()])
    app.on_response_prepare.append(add_security_headers)
    logs_api = LogsApi(logs, lambda: [obj.name for obj in store.list("resource")],
                       settings=settings, closing=streams.closing)

    async def logs_handler(request: web.Request) -> web.StreamResponse:
        with streams.track():
            return await logs_api.handle(request)

    app.add_routes([web.get("/api/v1/logs", logs_handler), *ActionsApi(actions).routes(),
                    web.get("/api/v1/snapshot", snapshot_handler(  # devloop.snapshot.route
                        store, logs, actions, lambda: web_dir or web_root())),
                    *ResourceApi(store, feed, settings, streams).routes(),
                    *DashboardFiles(guard.token, web_dir or web_root(), feed).routes()])
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[
        [web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Errors as `{"error": ...}` JSON, so clients parse one shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return web.json_response({"error": f"{exc.status} {exc.reason}: {request.path}"},
                                 status=exc.status, headers=allow)


@dataclass
class RunningServer:
    url: str
    port: int
    token: str
    daemon_file: Path | None
    _runner: web.AppRunner
    _feed: ChangeFeed
    _streams: Streams = field(default_factory=Streams)

    async def stop(self) -> None:
        await self._streams.close()
        await self._feed.stop()
        await self._runner.cleanup()
        if self.daemon_file is not None:
            remove_daemon_file(self.daemon_file, self.token)


async def start_server(*, store: Store, logs: LogStore, actions: Actions,
                       host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                       settings: ServerSettings = ServerSettings(),
                       web_dir: Path | None = None, state_dir: Path | None = None,
                       write_file: bool = True) -> RunningServer:
    """Serve until `stop()`. Port 0 picks a free port (`RunningServer.port` is the real one).
    The token and URL go to the daemon file (`security.daemon_file`) for the CLI clients."""
    guard = Guard(bind_host=host)
    # A feed that fails stalls every watch: say so in the session's log and as an alert.
    feed = ChangeFeed(store, on_error=report_to(
        lambda text: logs.append(SESSION_LOG, text, source="tiltfile"), publisher_of(store)))
    feed.start()
    streams = Streams()
    app = build_app(store=store, logs=logs, actions=actions, guard=guard, feed=feed,
                    settings=settings, web_dir=web_dir, streams=streams)
    runner = web.AppRunner(app, access_log=None, logger=HTTP_LOG)
    await runner.setup()
    site = web.TCPSite(runner, host or None, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        await feed.stop()
        raise
    guard.port = runner.addresses[0][1] if runner.addresses else port
    url_host = "127.0.0.1" if host in WILDCARD_HOSTS else host
    url_host = f"[{url_host}]" if ":" in url_host else url_host
    url = f"http://{url_host}:{guard.port}"
    path = daemon_file(guard.port, state_dir) if write_file else None
    if path is not None:
        write_daemon_file(path, url=url, token=guard.token)
    return RunningServer(url=url, port=guard.port, token=guard.token, daemon_file=path,
                         _runner=runner, _feed=feed, _streams=streams)

