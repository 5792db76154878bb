"""The watcher under a real, small inotify limit: a child user namespace lowers its own
`user.max_inotify_watches` (the machine's limits stay as they are), and devloop's watcher
started there says which limit is too low and how to raise it, with no traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devloop.engine import watcher as w

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def tree(root: Path, directories: int) -> Path:
    for index in range(directories - 1):
        (root / f"d{index // 10}" / f"e{index}").mkdir(parents=True, exist_ok=True)
    return root


CHILD = textwrap.dedent("""
    import asyncio, sys
    from devloop.engine.watcher import FileWatcher, WatchLimitError

    async def main() -> None:
        watcher = FileWatcher(lambda changes: None)
        try:
            watcher.start([sys.argv[1]])
        except WatchLimitError as exc:
            print("LIMIT", exc.limit, exc.value)
            print(exc)
            return
        print("WATCHING")
        watcher.stop()

    asyncio.run(main())
""")


def test_a_real_small_watch_limit_in_a_user_namespace_gives_the_message(tmp_path):
    # In a child user namespace the namespace's own watch limit can be lowered without
    # touching the machine's: 20 watches for a project of 60 directories.
    project = tree(tmp_path / "project", 60)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    command = (f"echo 20 > /proc/sys/user/max_inotify_watches && "
               f"exec {sys.executable} {script} {project}")
    result = subprocess.run(["unshare", "-U", "-r", "sh", "-c", command], capture_output=True,
                            text=True, timeout=60, check=False,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("LIMIT user.max_inotify_watches 20"), result.stdout
    assert f"{w.count_directories([str(project)])} directories" in result.stdout
    assert "sudo sysctl user.max_inotify_watches=" in result.stdout
    assert "Traceback" not in result.stderr


GROWING = textwrap.dedent("""
    import asyncio, os, sys
    from devloop.engine.watcher import FileWatcher

    async def main() -> None:
        told = asyncio.Event()
        messages = []

        def on_error(message: str) -> None:
            messages.append(message)
            told.set()

        watcher = FileWatcher(lambda changes: None, on_error=on_error)
        watcher.start([sys.argv[1]])
        print("WATCHING")
        for index in range(40):  # new directories, each wanting a watch of its own
            os.makedirs(os.path.join(sys.argv[1], f"new{index}"))
        try:
            await asyncio.wait_for(told.wait(), 20)
        except TimeoutError:
            print("NOT TOLD")
        for message in messages:
            print(message)
        watcher.stop()

    asyncio.run(main())
""")


def test_reaching_the_limit_after_starting_is_said_with_the_fix(tmp_path):
    # 30 watches: the project's 10 directories fit, the 40 made afterwards do not.
    project = tree(tmp_path / "project", 10)
    script = tmp_path / "child.py"
    script.write_text(GROWING)
    command = (f"echo 30 > /proc/sys/user/max_inotify_watches && "
               f"exec {sys.executable} {script} {project}")
    result = subprocess.run(["unshare", "-U", "-r", "sh", "-c", command], capture_output=True,
                            text=True, timeout=60, check=False, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("WATCHING\n"), result.stdout
    assert "NOT TOLD" not in result.stdout, result.stdout + result.stderr
    assert "user.max_inotify_watches = 30" in result.stdout
    assert "New directories are not watched" in result.stdout
    assert "sudo sysctl user.max_inotify_watches=" in result.stdout
    assert "Unable to watch" not in result.stderr  # said once, by devloop, not per directory
