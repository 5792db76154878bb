"""The live terminal UI of `devloop up`: a rich Live screen redrawn on store and log changes.

It reads only the Store and the LogStore, and changes nothing itself: triggers, enabling and
quitting go through the `actions` callbacks and the `quit_requested` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import sys
import webbrowser
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Protocol

from rich.console import Console, RenderableType
from rich.live import Live

from devloop.engine.logs import LogLine, LogStore
from devloop.engine.store import Change, Store
from devloop.engine.tasks import spawn
from devloop.hud import keys as k
from devloop.hud.screen import View, render
from devloop.hud.table import ResourceRow, resource_rows

log = logging.getLogger(__name__)

# At most ten frames a second: changes arriving while a frame waits are drawn together, so a
# log flood costs ten redraws a second, not one per line. 100ms still feels immediate.
MIN_FRAME_SECONDS = 0.1


class Actions(Protocol):
    """The only way the UI changes anything. Calls may return an awaitable."""

    def trigger(self, name: str) -> object: ...

    def set_enabled(self, name: str, enabled: bool) -> object: ...

    def names(self) -> list[str]: ...


class Hud:
    def __init__(self, store: Store, logs: LogStore, actions: Actions, dashboard_url: str, *,
                 console: Console | None = None, keys: k.KeySource | None = None,
                 open_url: Callable[[str], bool] = webbrowser.open) -> None:
        self.store, self.logs, self.actions = store, logs, actions
        self.dashboard_url = dashboard_url
        self.console = console or Console()
        self.keys = keys if keys is not None else k.TerminalKeys(sys.stdin.fileno())
        self.open_url = open_url
        self.quit_requested = asyncio.Event()
        self.selected: str | None = None
        self.show_all = True
        self.flash = ""
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        # The newest log lines, only as many as the screen can show (each takes >= 1 row):
        # the LogStore keeps everything else, and we re-read from it when the view changes.
        self._tail: deque[LogLine] = deque()
        self._tail_key: tuple[str | None, int] | None = None

    # -- lifecycle
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        changes, lines = self.store.subscribe(), self.logs.subscribe()
        pressed: asyncio.Queue[str] = asyncio.Queue()
        pumps = [self._spawn(self._pump_changes(changes), "hud-store"),
                 self._spawn(self._pump_lines(lines), "hud-logs"),
                 self._spawn(self._pump_keys(pressed), "hud-keys")]
        resize_handled = False
        try:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGWINCH, self._wake.set)
                resize_handled = True

            def deliver(key: str) -> None:
                loop.call_soon_threadsafe(pressed.put_nowait, key)

            self.keys.start(deliver)
            with Live(self.frame(), console=self.console, screen=True, auto_refresh=False,
                      redirect_stdout=True, redirect_stderr=True) as live:
                while not self._stopping:
                    await self._wake.wait()
                    self._wake.clear()
                    if self._stopping:
                        break
                    live.update(self.frame(), refresh=True)
                    await asyncio.sleep(MIN_FRAME_SECONDS)
        finally:
            self.keys.stop()
            if resize_handled:
                loop.remove_signal_handler(signal.SIGWINCH)
            self.store.unsubscribe(changes)
            self.logs.unsubscribe(lines)
            for task in [*pumps, *self._tasks]:
                task.cancel()
            for task in [*pumps, *self._tasks]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def _spawn(self, coroutine: Coroutine[object, object, None], name: str,
               ) -> asyncio.Task[None]:
        task = spawn(coroutine, name=name)  # a failure goes to Python's log
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- inputs
    async def _pump_changes(self, changes: asyncio.Queue[Change]) -> None:
        while True:
            await changes.get()
            self._wake.set()

    async def _pump_lines(self, lines: asyncio.Queue[LogLine]) -> None:
        while True:
            self.add_line(await lines.get())

    async def _pump_keys(self, pressed: asyncio.Queue[str]) -> None:
        while True:
            self.press(await pressed.get())

    def add_line(self, line: LogLine) -> None:
        if self._tail_key is not None and (self._tail_key[0] in (None, line.resource)) and (
                not self._tail or line.seq > self._tail[-1].seq):
            self._tail.append(line)
        self._wake.set()

    # -- keys
    def press(self, key: str) -> None:
        """Act on one key; the next frame shows the result."""
        rows = self.rows()
        names = [row.name for row in rows]
        current = self._selected_row(rows)
        if key in (k.UP, "k", k.DOWN, "j", k.HOME, k.END) and names:
            index = names.index(current.name) if current else 0
            index = {k.UP: index - 1, "k": index - 1, k.DOWN: index + 1, "j": index + 1,
                     k.HOME: 0, k.END: len(names) - 1}[key]
            self.selected = names[max(0, min(index, len(names) - 1))]
        elif key in (k.ENTER, "l", k.RIGHT):
            self.show_all = not self.show_all
        elif key in (k.ESCAPE, "h", k.LEFT):
            self.show_all = True
        elif key in ("t", "r") and current:
            self._act(lambda: self.actions.trigger(current.name), f"triggered {current.name}")
        elif key == "e" and current:
            verb = "disabled" if current.enabled else "enabled"
            self._act(lambda: self.actions.set_enabled(current.name, not current.enabled),
                      f"{verb} {current.name}")
        elif key == "b":
            self._spawn(self._open_browser(), "hud-browser")
        elif key in ("q", k.CTRL_C):
            self.quit_requested.set()
            self.stop()
        self._wake.set()

    def _act(self, call: Callable[[], object], done: str) -> None:
        try:
            result = call()
        except Exception as exc:  # e.g. the resource was removed by a Tiltfile reload
            self.flash = f"failed: {exc}"
            return
        self.flash = done
        if inspect.isawaitable(result):
            self._spawn(self._finish(result, done), "hud-action")

    async def _finish(self, pending: Awaitable[object], done: str) -> None:
        try:
            await pending
        except Exception as exc:
            self.flash = f"failed: {done}: {exc}"
            self._wake.set()

    async def _open_browser(self) -> None:
        if not self.dashboard_url:
            self.flash = "no dashboard URL"
        else:
            # Opening a browser can block (it starts a process), so off the loop.
            opened = await asyncio.to_thread(self.open_url, self.dashboard_url)
            self.flash = (f"opened {self.dashboard_url}" if opened
                          else f"no browser found; open {self.dashboard_url}")
        self._wake.set()

    # -- the frame
    def rows(self) -> list[ResourceRow]:
        order = {name: index for index, name in enumerate(self.actions.names())}
        rows = resource_rows(self.store)
        return sorted(rows, key=lambda row: order.get(row.name, len(order)))

    def _selected_row(self, rows: list[ResourceRow]) -> ResourceRow | None:
        for row in rows:
            if row.name == self.selected:
                return row
        return rows[0] if rows else None

    def frame(self) -> RenderableType:
        width, height = self.console.size
        rows = self.rows()
        current = self._selected_row(rows)
        self.selected = current.name if current else None
        source = None if self.show_all or current is None else current.name
        if self._tail_key != (source, height):
            self._tail = deque(self.logs.recent(source, height), maxlen=height)
            self._tail_key = (source, height)
        view = View(self.selected, source is None, self.dashboard_url, self.flash)
        dropped = self.logs.dropped(source) if source else 0
        return render(rows, list(self._tail), view, width=width, height=height,
                      dropped=dropped, console=self.console)
