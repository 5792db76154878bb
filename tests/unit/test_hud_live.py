"""The live terminal UI: keys act through the callbacks it was given, frames follow state."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable

from rich.console import Console

from devloop.engine.logs import LogStore
from devloop.engine.store import Store
from devloop.hud import keys as k
from devloop.hud.live import Hud


class FakeActions:
    def __init__(self, names: list[str]) -> None:
        self._names = names
        self.calls: list[tuple[str, ...]] = []

    def names(self) -> list[str]:
        return list(self._names)

    def trigger(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self.calls.append(("trigger", name))

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.calls.append(("set_enabled", name, str(enabled)))


class FakeKeys:
    """A key source the test types into, like TerminalKeys but without a terminal."""

    def __init__(self) -> None:
        self.deliver: Callable[[str], None] | None = None
        self.stopped = False

    def start(self, deliver: Callable[[str], None]) -> None:
        self.deliver = deliver

    def stop(self) -> None:
        self.stopped = True


def _setup(names=("api", "web", "worker")):
    store, logs = Store(), LogStore()
    for name in names:
        store.put("resource", name, spec={"type": "k8s"},
                  status={"updateStatus": "ok", "runtimeStatus": "ok", "builds": 1,
                          "enabled": name != "worker"})
        logs.append(name, f"hello from {name}")
    out = io.StringIO()
    console = Console(file=out, width=100, height=24, force_terminal=True, color_system=None)
    actions, keys = FakeActions(list(names)), FakeKeys()
    opened: list[str] = []
    hud = Hud(store, logs, actions, "http://127.0.0.1:10350/", console=console, keys=keys,
              open_url=lambda url: opened.append(url) or True)
    return hud, store, logs, actions, keys, opened


def _screen(hud: Hud) -> str:
    console = Console(width=100, height=24, file=io.StringIO(), record=True,
                      color_system=None)
    console.print(hud.frame())
    return console.export_text()


def test_keys_move_the_selection_and_trigger_the_selected_resource():
    hud, _, _, actions, _, _ = _setup()
    hud.frame()
    assert hud.selected == "api"
    for key in ("j", k.DOWN, k.DOWN, "k"):
        hud.press(key)
    assert hud.selected == "web"
    hud.press("t")
    hud.press(k.UP)
    hud.press("r")
    assert actions.calls == [("trigger", "web"), ("trigger", "api")]
    assert "triggered api" in _screen(hud)


def test_enter_toggles_between_all_logs_and_the_selected_resources_logs():
    hud, _, logs, _, _, _ = _setup()
    assert "web │ hello from web" in _screen(hud)
    hud.press("j")
    hud.press(k.ENTER)
    screen = _screen(hud)
    assert "logs of web" in screen and "\nhello from web" in screen
    assert "hello from api" not in screen
    logs.append("web", "second line")
    logs.append("api", "not for web")
    for line in logs.lines(since=0)[-2:]:
        hud.add_line(line)
    screen = _screen(hud)
    assert "\nsecond line" in screen and "not for web" not in screen
    hud.press("l")
    assert "logs of all resources" in _screen(hud)


def test_e_flips_enabled_of_the_selected_resource():
    hud, _, _, actions, _, _ = _setup()
    hud.press(k.END)
    hud.press("e")
    hud.press(k.HOME)
    hud.press("e")
    assert actions.calls == [("set_enabled", "worker", "True"), ("set_enabled", "api", "False")]


def test_a_failing_action_shows_in_the_footer_instead_of_crashing():
    hud, store, _, actions, _, _ = _setup()
    store.put("resource", "gone", spec={}, status={"updateStatus": "ok"})
    hud.press(k.END)
    hud.press("t")
    assert actions.calls == []
    assert "failed: 'gone'" in _screen(hud)


async def test_q_requests_quit_and_the_screen_gives_the_terminal_back():
    hud, store, logs, actions, keys, opened = _setup()
    run = asyncio.create_task(hud.run())
    while keys.deliver is None:
        await asyncio.sleep(0)
    keys.deliver("b")
    logs.append("api", "while running")
    store.update_status("resource", "web", updateStatus="in_progress")
    # Frames are drawn at most ten times a second; wait for the one showing both changes.
    while not opened or "while running" not in hud.console.file.getvalue():
        await asyncio.sleep(0.01)
    keys.deliver("q")
    await asyncio.wait_for(run, 10)
    assert hud.quit_requested.is_set()
    assert keys.stopped
    assert opened == ["http://127.0.0.1:10350/"]
    output = hud.console.file.getvalue()
    assert "\x1b[?1049h" in output and output.rstrip().endswith("\x1b[?1049l")
    assert not store._subscribers and not logs._subscribers


async def test_stop_ends_the_screen_without_requesting_quit():
    hud, _, _, _, keys, _ = _setup()
    run = asyncio.create_task(hud.run())
    while keys.deliver is None:
        await asyncio.sleep(0)
    hud.stop()
    await asyncio.wait_for(run, 10)
    assert not hud.quit_requested.is_set() and keys.stopped
