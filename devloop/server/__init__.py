"""The daemon's HTTP API: store objects, watches, logs and actions, and the dashboard.

Names are imported on first use, so the CLI clients (which only read `daemon_file`) do not
load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"start_server": "app", "RunningServer": "app", "ServerSettings": "app",
            "Actions": "actions", "ActionRefused": "actions"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"devloop.server.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
