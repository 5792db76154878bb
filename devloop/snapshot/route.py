"""`GET /api/v1/snapshot`: the daemon writes the snapshot, for the dashboard's button and for
`devloop snapshot`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.model import plan as p
from devloop.snapshot.gather import read_lines, snapshot_data, take
from devloop.snapshot.render import render_html

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def snapshot_name(now: float) -> str:
    return time.strftime("devloop-snapshot-%Y%m%d-%H%M%S.html", time.localtime(now))


def _plan_of(actions: Any) -> p.Plan | None:
    """The session's current Plan, from the engine behind the API's actions (EngineActions);
    None for an API without one (unit tests' fake actions)."""
    plan = getattr(getattr(actions, "engine", None), "plan", None)
    return plan if isinstance(plan, p.Plan) else None


def snapshot_handler(store: Store, logs: LogStore, actions: Any,
                     web_dir: Callable[[], Path | None]) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        root = web_dir()
        if root is None or not (root / "index.html").is_file():
            raise web.HTTPNotFound(text='{"error": "the web dashboard is not installed"}',
                                   content_type="application/json")
        plan = _plan_of(actions)
        if plan is not None and plan.settings.snapshots_disabled:
            raise web.HTTPConflict(text='{"error": "snapshots are off: the Tiltfile calls '
                                   'disable_snapshots()"}', content_type="application/json")
        now = time.time()
        # Read on the loop (lines appended meanwhile are in or out, never half in); scrubbed
        # and rendered in a thread.
        lines = await read_lines(logs)
        taken = take(store, logs, plan, now=now, lines=lines)
        page = await asyncio.to_thread(lambda: render_html(snapshot_data(taken), root))
        return web.Response(text=page, content_type="text/html", headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{snapshot_name(now)}"'})

    return handle
