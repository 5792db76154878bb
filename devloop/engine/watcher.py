"""File watching: watchdog's observer thread hands events to the loop, debounced into sets.

The observer runs in its own thread (the one seam to the blocking library); each event is
handed over with `call_soon_threadsafe`. A burst of events (a git checkout, a formatter
run) becomes one change set after `debounce` seconds of quiet.

Linux watches each directory with one inotify watch, counted against the user's
`fs.inotify.max_user_watches` (and each process's inotify instance against
`fs.inotify.max_user_instances`). When a limit is too low for the project, watching fails
with `WatchLimitError`, whose message names the limit, its current value and the `sysctl`
line that raises it, instead of a traceback or changes that are silently never seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from devloop.engine.filters import is_noise
from devloop.model.trace import FileNotice

# Tilt's coalescing delay is 200ms "not the result of any kind of research". An editor's
# write-rename-chmod burst and a git checkout's events come milliseconds apart at most,
# so 25 ms of quiet still folds each into one set, and adds 25 ms to every save-to-response
# (a burst split in two just updates twice: the second set waits for the first's update).
DEFAULT_DEBOUNCE_SECONDS = 0.025
# Where Linux publishes its limits (the root of sysctl's tree; tests point elsewhere).
PROC_SYS = "/proc/sys"
# What the message suggests for the watch limit at least: the value most IDE and file-sync
# guides use (each watch costs about 1 KiB of kernel memory, so 512 MiB at most), or twice
# what the project needs when it needs more.
SUGGESTED_MAX_USER_WATCHES = 524288
SUGGESTED_MAX_USER_INSTANCES = 512


@dataclass(frozen=True)
class _Limit:
    what: str  # "watch" or "instance"
    sysctl: str  # the system-wide limit per user
    namespaced: str  # the same limit of the user namespace (containers, rootless runtimes)
    suggested: int


# errno -> the limit it means (inotify_add_watch says ENOSPC, inotify_init EMFILE).
_LIMITS = {
    errno.ENOSPC: _Limit("watch", "fs.inotify.max_user_watches",
                         "user.max_inotify_watches", SUGGESTED_MAX_USER_WATCHES),
    errno.EMFILE: _Limit("instance", "fs.inotify.max_user_instances",
                         "user.max_inotify_instances", SUGGESTED_MAX_USER_INSTANCES),
}


class WatchLimitError(Exception):
    """The OS refused to watch the project: an inotify limit is too low. The message names
    the limit, its value and how to raise it."""

    def __init__(self, message: str, *, limit: str, value: int | None) -> None:
        super().__init__(message)
        self.limit = limit  # the sysctl name, e.g. "fs.inotify.max_user_watches"
        self.value = value  # its current value, when readable


def read_sysctl(name: str, proc_sys: str = PROC_SYS) -> int | None:
    """The current value of a sysctl (dotted name), or None when it cannot be read."""
    try:
        return int(Path(proc_sys, *name.split(".")).read_text().strip())
    except (OSError, ValueError):
        return None


def count_directories(roots: Iterable[str]) -> int:
    """How many directories watching `roots` recursively takes (one watch each)."""
    total = 0
    for root in roots:
        for parent, dirs, _ in os.walk(root):
            total += 1
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(parent, d))]
    return total


def limit_error(error: OSError, roots: Iterable[str], *, proc_sys: str = PROC_SYS,
                started: bool = False) -> WatchLimitError | None:
    """A WatchLimitError explaining `error` when it is an inotify limit, else None.

    The limit that bit is the lower of the system's (fs.inotify.*, per user) and the user
    namespace's (user.max_inotify_*, lowered in some containers); the message names it.
    `started`: watching had started, and a directory created since could not be watched."""
    limit = _LIMITS.get(error.errno or 0)
    if limit is None:
        return None
    system = read_sysctl(limit.sysctl, proc_sys)
    namespaced = read_sysctl(limit.namespaced, proc_sys)
    name, current = limit.sysctl, system
    if namespaced is not None and (system is None or namespaced < system):
        name, current = limit.namespaced, namespaced
    shown = f"{current:,}" if current is not None else "unknown"
    roots = list(roots)
    if limit.what == "watch":
        needed = count_directories(roots)
        value = max(limit.suggested, 2 * needed)
        why = (f"the inotify watch limit is reached: {name} = {shown}, shared by every "
               f"program of this user, and the project has {needed:,} directories to watch "
               "(one watch each)")
    else:
        value = max(limit.suggested, 2 * (current or 0))
        why = (f"the inotify instance limit is reached: {name} = {shown} per user, all in "
               "use by other programs (editors, file sync, other watchers)")
    places = ", ".join(roots[:3]) + (f" and {len(roots) - 3} more" if len(roots) > 3 else "")
    persist = ("" if name.startswith("user.") else
               f"\nand to keep it across reboots:\n  echo {name}={value} | "
               "sudo tee /etc/sysctl.d/90-devloop-inotify.conf")
    consequence = ("New directories are not watched: edits in them will not update "
                   "resources" if started else
                   "File watching is off: edits will not update resources")
    message = (f"cannot watch {places} for changes: {why}. {consequence}. Raise the limit, "
               f"then restart devloop:\n"
               f"  sudo sysctl {name}={value}{persist}")
    return WatchLimitError(message, limit=name, value=current)


def watch_roots(paths: Iterable[str]) -> list[str]:
    """The directories to watch recursively for `paths`: a file's directory, existing ones
    only, none inside another (its parent's recursive watch covers it already)."""
    directories: set[str] = set()
    for path in paths:
        directory = path if os.path.isdir(path) else os.path.dirname(path)
        if os.path.isdir(directory):
            directories.add(os.path.normpath(directory))
    roots: list[str] = []
    for directory in sorted(directories):
        if not any(directory == root or directory.startswith(root.rstrip(os.sep) + os.sep)
                   for root in roots):
            roots.append(directory)
    return roots


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


def _seen_now(path: str) -> tuple[float, float]:
    """When an event arrived and the file's mtime (0 when it is gone), read in the
    observer's thread so the loop pays nothing for it."""
    try:
        return time.time(), os.stat(path).st_mtime
    except OSError:
        return time.time(), 0.0


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


# watchdog logs "Unable to watch <dir>: [Errno 28] ..." here when a directory created after
# the start cannot get a watch; the rest of the tree goes on being watched.
_WATCHDOG_LOG = logging.getLogger("watchdog.observers.inotify")


class _LimitReports(logging.Handler):
    """Turns watchdog's records of an inotify limit reached (arguments holding the OSError)
    into one call of each registered report, in watchdog's thread, instead of a warning per
    directory on stderr. Other records go where they would have gone without this handler
    (Python's last-resort stderr handler when logging is not configured)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reports: list[Callable[[OSError], object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        error = next((arg for arg in args if isinstance(arg, OSError)), None)
        if error is not None and error.errno in _LIMITS:
            for report in list(self.reports):
                with contextlib.suppress(RuntimeError):  # its loop is closed
                    report(error)
            return
        if not logging.getLogger().handlers and logging.lastResort is not None \
                and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


_LIMIT_REPORTS = _LimitReports()
_WATCHDOG_LOG.addHandler(_LIMIT_REPORTS)


@dataclass
class FileWatcher:
    on_changes: Callable[[frozenset[str]], None]
    debounce: float = DEFAULT_DEBOUNCE_SECONDS
    proc_sys: str = PROC_SYS
    # Called (on the loop) when a directory created after the start cannot be watched: it
    # needs a watch of its own, and the limit may be reached then.
    on_error: Callable[[str], None] | None = None
    _report: Callable[[OSError], None] | None = None
    _told: bool = False
    _observer: BaseObserver | None = None
    _pending: set[str] = field(default_factory=set)
    _timer: asyncio.TimerHandle | None = None
    _roots: list[str] = field(default_factory=list)
    _seen: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The last change set's files as seen (mtime, event, sent): where update traces start.
    notices: dict[str, FileNotice] = field(default_factory=dict)

    @property
    def roots(self) -> list[str]:
        """The directories watched (recursively)."""
        return list(self._roots)

    def start(self, paths: Iterable[str]) -> None:
        """Watch `paths` (files or directories, recursively). Raises WatchLimitError when
        the OS's inotify limits are too low; nothing is watched then."""
        loop = asyncio.get_running_loop()
        observer = Observer()

        def deliver(path: str) -> None:  # in the observer's thread
            loop.call_soon_threadsafe(self._receive, path, *_seen_now(path))

        handler = _Handler(deliver)
        roots = watch_roots(paths)
        try:
            for root in roots:
                observer.schedule(handler, root, recursive=True)
            observer.daemon = True
            observer.start()
        except OSError as exc:
            with contextlib.suppress(Exception):
                observer.unschedule_all()
            with contextlib.suppress(Exception):
                observer.stop()
            limit = limit_error(exc, roots, proc_sys=self.proc_sys)
            if limit is not None:
                raise limit from None
            raise
        self._roots = roots
        self._observer = observer

        def report(error: OSError) -> None:  # in watchdog's thread
            loop.call_soon_threadsafe(self._limit_reached, observer, error)

        self._report = report
        _LIMIT_REPORTS.reports.append(report)

    def _limit_reached(self, observer: BaseObserver, error: OSError) -> None:
        """A directory made after the start could not be watched: say so once, with the fix."""
        if self._observer is not observer or self._told or self.on_error is None:
            return
        self._told = True
        limit = limit_error(error, self._roots, proc_sys=self.proc_sys, started=True)
        self.on_error(str(limit) if limit is not None else str(error))

    def _receive(self, path: str, seen: float = 0.0, saved: float = 0.0) -> None:
        if is_noise(path):  # editor temp files, VCS and cache directories
            return
        self._pending.add(path)
        # For update traces: when the burst's first event came, the file's newest mtime.
        first, newest = self._seen.get(path, (seen, saved))
        self._seen[path] = (first, max(newest, saved))
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.debounce, self._flush)

    def _flush(self) -> None:
        self._timer = None
        changes, self._pending = frozenset(self._pending), set()
        sent, seen, self._seen = time.time(), self._seen, {}
        self.notices = {path: FileNotice(path, saved, first or sent, sent)
                        for path, (first, saved) in seen.items() if path in changes}
        if changes:
            self.on_changes(changes)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._report is not None:
            with contextlib.suppress(ValueError):
                _LIMIT_REPORTS.reports.remove(self._report)
            self._report = None
        if self._observer is not None:
            self._observer.stop()
            with contextlib.suppress(RuntimeError):
                self._observer.join(timeout=2)
            self._observer = None
