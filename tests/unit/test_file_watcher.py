"""FileWatcher: changes become debounced sets; the OS's inotify limits become a message that
names the limit, its value and the sysctl line that raises it."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from devloop.engine import watcher as w
from devloop.engine.watcher import FileWatcher, WatchLimitError, limit_error, watch_roots


def fake_proc_sys(root: Path, **values: int) -> str:
    """A /proc/sys with the given sysctls (dotted names with `_` for `.`: fs_inotify_...)."""
    for key, value in values.items():
        name = {"watches": "fs/inotify/max_user_watches",
                "instances": "fs/inotify/max_user_instances",
                "ns_watches": "user/max_inotify_watches",
                "ns_instances": "user/max_inotify_instances"}[key]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value}\n")
    return str(root)


def tree(root: Path, directories: int) -> Path:
    for index in range(directories - 1):
        (root / f"d{index // 10}" / f"e{index}").mkdir(parents=True, exist_ok=True)
    return root


def test_the_watch_limit_message_names_the_limit_its_value_and_the_sysctl_fix(tmp_path):
    proc = fake_proc_sys(tmp_path / "proc", watches=8192, ns_watches=2147483647)
    project = tree(tmp_path / "project", 25)
    error = limit_error(OSError(errno.ENOSPC, "inotify watch limit reached"), [str(project)],
                        proc_sys=proc)
    assert isinstance(error, WatchLimitError)
    assert error.limit == "fs.inotify.max_user_watches" and error.value == 8192
    message = str(error)
    assert "fs.inotify.max_user_watches = 8,192" in message
    assert f"{w.count_directories([str(project)]):,} directories" in message
    assert f"sudo sysctl fs.inotify.max_user_watches={w.SUGGESTED_MAX_USER_WATCHES}" in message
    assert "/etc/sysctl.d/" in message and str(project) in message


def test_a_project_larger_than_the_suggestion_gets_twice_what_it_needs(tmp_path, monkeypatch):
    monkeypatch.setattr(w, "SUGGESTED_MAX_USER_WATCHES", 10)
    monkeypatch.setitem(w._LIMITS, errno.ENOSPC, w._Limit(
        "watch", "fs.inotify.max_user_watches", "user.max_inotify_watches", 10))
    project = tree(tmp_path / "project", 30)
    error = limit_error(OSError(errno.ENOSPC, "full"), [str(project)],
                        proc_sys=fake_proc_sys(tmp_path / "proc", watches=20))
    needed = w.count_directories([str(project)])
    assert needed > 30
    assert error is not None and f"fs.inotify.max_user_watches={2 * needed}" in str(error)


def test_a_lower_user_namespace_limit_is_the_one_named(tmp_path):
    proc = fake_proc_sys(tmp_path / "proc", watches=524288, ns_watches=100)
    error = limit_error(OSError(errno.ENOSPC, "full"), [str(tmp_path)], proc_sys=proc)
    assert error is not None and error.limit == "user.max_inotify_watches"
    assert "user.max_inotify_watches = 100" in str(error)
    assert "sudo sysctl user.max_inotify_watches=" in str(error)


def test_the_instance_limit_message_names_max_user_instances(tmp_path):
    proc = fake_proc_sys(tmp_path / "proc", instances=128)
    error = limit_error(OSError(errno.EMFILE, "inotify instance limit reached"),
                        [str(tmp_path)], proc_sys=proc)
    assert error is not None and error.limit == "fs.inotify.max_user_instances"
    assert "fs.inotify.max_user_instances = 128" in str(error)
    assert "sudo sysctl fs.inotify.max_user_instances=512" in str(error)


def test_other_os_errors_are_not_called_limits(tmp_path):
    assert limit_error(OSError(errno.EACCES, "denied"), [str(tmp_path)]) is None


def test_roots_are_directories_none_inside_another(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "f.txt").write_text("x")
    roots = watch_roots([str(tmp_path / "a" / "b"), str(tmp_path / "a"),
                         str(tmp_path / "c" / "f.txt"), str(tmp_path / "missing" / "x")])
    assert roots == [str(tmp_path / "a"), str(tmp_path / "c")]


def test_an_edit_arrives_as_one_debounced_set(tmp_path):
    tree(tmp_path, 5)
    target = tmp_path / "d0" / "e1" / "app.py"

    async def run() -> list[frozenset[str]]:
        got: list[frozenset[str]] = []
        arrived = asyncio.Event()

        def on_changes(changes: frozenset[str]) -> None:
            got.append(changes)
            arrived.set()

        watcher = FileWatcher(on_changes, debounce=0.05)
        watcher.start([str(tmp_path)])
        try:
            target.write_text("one")
            target.write_text("two")
            (tmp_path / "d0" / "e1" / ".app.py.swp").write_text("noise")
            await asyncio.wait_for(arrived.wait(), 10)
            await asyncio.sleep(0.2)
        finally:
            watcher.stop()
        return got

    assert asyncio.run(run()) == [frozenset({str(target)})]


def test_a_watch_limit_from_the_os_stops_watching_with_the_message(tmp_path, monkeypatch):
    proc = fake_proc_sys(tmp_path / "proc", watches=3)

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(w.Observer, "start", refuse)
    tree(tmp_path / "project", 5)

    async def run() -> None:
        watcher = FileWatcher(lambda changes: None, proc_sys=proc)
        with pytest.raises(WatchLimitError, match=r"fs\.inotify\.max_user_watches = 3"):
            watcher.start([str(tmp_path / "project")])
        assert watcher.roots == []
        watcher.stop()

    asyncio.run(run())
