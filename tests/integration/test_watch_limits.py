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
