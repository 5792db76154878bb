"""File watching: watchdog's observer thread hands events to the loop, debounced into sets.

The observer runs in its own thread (the one seam to the blocking library); each event is
handed over with `call_soon_threadsafe`. A burst of events (a git checkout, a formatter
run) becomes one change set after `debounce` seconds of quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from devloop.engine.filters import is_noise

# Tilt's coalescing delay is 200ms "not the result of any kind of research"; 100ms keeps
# the loop snappy while still folding an editor's write-rename-chmod burst into one set.
DEFAULT_DEBOUNCE_SECONDS = 0.1


def read_ignore_file(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return [line.strip() for line in handle
                    if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def matches_any(path: str, base: str, patterns: Iterable[str]) -> bool:
    """gitignore-like matching: a pattern without a slash matches any path component."""
    rel = os.path.relpath(path, base)
    if rel.startswith(".."):
        return False
    parts = rel.split(os.sep)
    for raw in patterns:
        pattern = raw.rstrip("/")
        if not pattern or pattern.startswith("!"):
            continue
        pattern = pattern.lstrip("/")
        if "/" in pattern:
            if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern + "/*") \
                    or rel.startswith(pattern + os.sep):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


class _Handler(FileSystemEventHandler):
    def __init__(self, deliver: Callable[[str], None]) -> None:
        self.deliver = deliver

    def on_any_event(self, event: FileSystemEvent) -> None:
        # A directory's own modified event only echoes changes to its files.
        if event.event_type in ("opened", "closed_no_write") or (
                event.is_directory and event.event_type == "modified"):
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.deliver(os.fsdecode(path))


@dataclass
class FileWatcher:
    on_changes: Callable[[frozenset[str]], None]
    debounce: float = DEFAULT_DEBOUNCE_SECONDS
    _observer: Observer | None = None  # type: ignore[valid-type]
    _pending: set[str] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    _watched: set[str] = field(default_factory=set)

    def start(self, paths: Iterable[str]) -> None:
        loop = asyncio.get_running_loop()
        observer = Observer()
        handler = _Handler(lambda path: loop.call_soon_threadsafe(self._receive, path))
        for path in sorted(set(paths)):
            directory = path if os.path.isdir(path) else os.path.dirname(path)
            if not os.path.isdir(directory) or directory in self._watched:
                continue
            self._watched.add(directory)
            observer.schedule(handler, directory, recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _receive(self, path: str) -> None:
        if is_noise(path):  # editor temp files, VCS and cache directories
            return
        self._pending.add(path)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.debounce, self._flush)

    def _flush(self) -> None:
        self._timer = None
        changes, self._pending = frozenset(self._pending), set()
        if changes:
            self.on_changes(changes)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._observer is not None:
            self._observer.stop()
            with contextlib.suppress(RuntimeError):
                self._observer.join(timeout=2)
            self._observer = None
