"""The daemon file: where a running daemon tells local CLI clients its URL and token.

Daemon files live in `state_dir()` (see devloop.model.state_dir).

Stdlib only, so `devloop get` and friends start fast and need no server code.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from devloop.model.state_dir import state_dir


def daemon_file(port: int, directory: Path | None = None) -> Path:
    return (directory or state_dir()) / f"daemon-{port}.json"


def write_daemon_file(path: Path, *, url: str, token: str) -> None:
    """Written 0600 and renamed into place, so a reader never sees half a file and no other
    user can read the token. The directory is made private too, also when it already existed:
    others should not even see which daemons run."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _make_private(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token, "pid": os.getpid()}, handle)
    os.replace(temporary, path)


def _make_private(directory: Path) -> None:
    """0700 for a directory of ours that others may read; one we do not own (a shared
    directory named by DEVLOOP_STATE_DIR) is left alone: the file itself is 0600."""
    info = directory.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        os.chmod(directory, 0o700)


def read_daemon_file(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_daemon_file(path: Path, token: str) -> None:
    """Remove the file only if it is still ours: a newer daemon on the same port owns it."""
    data = read_daemon_file(path)
    if data is not None and data.get("token") == token:
        with contextlib.suppress(OSError):
            path.unlink()
