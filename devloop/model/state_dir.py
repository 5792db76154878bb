"""Where devloop keeps files of its own on this machine (stdlib only: the CLI imports it)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """`$DEVLOOP_STATE_DIR` (tests, several users of one home), else
    `$XDG_CACHE_HOME/devloop`, else `~/.cache/devloop`."""
    explicit = os.environ.get("DEVLOOP_STATE_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "devloop"
