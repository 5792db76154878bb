"""Which UI a session gets (live screen or plain lines) and how it ends with the session."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import traceback

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.engine.tasks import spawn
from devloop.hud.live import Actions, Hud
from devloop.hud.plain import PlainPrinter


def wants_live_screen(options: argparse.Namespace) -> bool:
    """`devloop up` on a terminal gets the live screen; `--stream`, `ci`, pipes and dumb
    terminals get plain lines."""
    return (options.command == "up" and not getattr(options, "stream", False)
            and sys.stdin.isatty() and sys.stdout.isatty()
            and os.environ.get("TERM", "") not in ("", "dumb"))


async def run_ui(options: argparse.Namespace, store: Store, logs: LogStore, actions: Actions,
                 dashboard_url: str, stop_event: asyncio.Event) -> None:
    """Show the session until `stop_event` is set. Quitting the live screen (q) sets
    `stop_event`, so the session ends. Plain mode prints the lines kept so far, then every
    new one, and keeps printing while the session shuts down."""
    if not wants_live_screen(options):
        PlainPrinter().attach(logs)
        await stop_event.wait()
        return
    hud = Hud(store, logs, actions, dashboard_url)
    # The screen's failure is awaited below: shown, then plain lines instead.
    screen = spawn(hud.run(), name="hud", handled=True)
    stopped = spawn(stop_event.wait(), name="hud-stop")
    try:
        await asyncio.wait({screen, stopped}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        # Cancelled with the session: still wait for the screen to give the terminal back.
        hud.stop()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await screen
        raise
    finally:
        hud.stop()
        stopped.cancel()
    try:
        await screen
    except Exception:
        # The screen is gone and the terminal restored: say why, and keep the session
        # visible as plain lines rather than running on silently.
        traceback.print_exc()
        print("devloop: the terminal UI failed; showing plain log lines", file=sys.stderr)
        PlainPrinter().attach(logs)
        await stop_event.wait()
        return
    if hud.quit_requested.is_set():
        stop_event.set()
