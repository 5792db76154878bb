"""`devloop up`'s watch loop: file changes become resource updates or a Tiltfile reload.

A reload evaluates in a child process (`tiltfile/isolated.py`), waited for in a thread: a
Tiltfile that recurses forever, loops or eats memory is stopped there and the daemon lives
on. What the Tiltfile prints (`local()` echoes its command before running it) reaches the
log as it happens, and its warnings (ignored parameters, unused images) once it is done. On
success the engine adopts the new plan and only changed resources
update; on any error the running state stays as it was and the error is shown with its
file:line. Stopping the reloader kills a running evaluation and its commands, and so does
a new change while one runs (the loop then starts over with the new files).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from devloop.engine.alerts import (
    EVIDENCE_LINES,
    Alert,
    AlertType,
    Evidence,
    clear_alert,
    publisher_of,
    raise_alert,
)
from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.tasks import cancel_and_wait, spawn
from devloop.engine.watch_routes import routing_for
from devloop.engine.watcher import FileWatcher, WatchLimitError
from devloop.model import kinds as k
from devloop.model import plan as p
from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.isolated import ChildEvaluator

if TYPE_CHECKING:  # the daemon never loads starlark-go: Tiltfiles run in a child process
    from devloop.tiltfile.evaluation import Evaluation

TILTFILE_RESOURCE = "(Tiltfile)"

# Evaluates the Tiltfile with the given child evaluator, passing each printed line on.
EvaluateFn = Callable[[ChildEvaluator, Callable[[str], None]], "Evaluation"]


class Reloader:
    def __init__(self, engine: Engine, logs: LogStore, evaluate: EvaluateFn) -> None:
        self.engine = engine
        self.logs = logs
        self.evaluate = evaluate
        self.child = ChildEvaluator(keep_spare=True)
        self.watcher: FileWatcher | None = None
        self._reload_wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""

    def start(self) -> None:
        self._watch(self.engine.plan)
        self._task = spawn(self._reload_loop(), name="tiltfile-reload",
                           resource=TILTFILE_RESOURCE,
                           on_error=self.engine.task_reporter(TILTFILE_RESOURCE))

    def _watch(self, plan: p.Plan) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.routing = routing_for(plan)
        self.watcher = FileWatcher(self._on_changes, on_error=self._watch_failed)
        try:
            self.watcher.start(self.routing.roots())
        except WatchLimitError as exc:  # the OS's inotify limits: say which and the fix
            self.watcher = None
            self._watch_failed(str(exc))
        else:
            clear_alert(self.engine.store.delete, AlertType.FILE_WATCH, TILTFILE_RESOURCE,
                        current=self.engine.store)

    def _watch_failed(self, message: str) -> None:
        self.logs.append(TILTFILE_RESOURCE, f"ERROR: {message}", source="tiltfile")
        raise_alert(publisher_of(self.engine.store), Alert(
            AlertType.FILE_WATCH, TILTFILE_RESOURCE, message), current=self.engine.store)

    def _on_changes(self, changes: frozenset[str]) -> None:
        reload, by_resource = self.routing.route(changes)
        if reload:
            self._reload_wanted.set()
        notices = self.watcher.notices if self.watcher is not None else {}
        for name, files in by_resource.items():
            self.engine.traces.noticed(name, [notices[f] for f in files if f in notices])
            self.engine.files_changed(name, files)

    def request_reload(self) -> None:
        self._reload_wanted.set()

    async def _reload_loop(self) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted.clear()
            try:
                await self.reload()
            except Exception as exc:  # the loop must outlive any one reload
                self.logs.append(TILTFILE_RESOURCE, f"ERROR: reload failed: "
                                 f"{type(exc).__name__}: {exc}", source="tiltfile")

    async def reload(self) -> None:
        self.logs.append(TILTFILE_RESOURCE, "Tiltfile changed: re-evaluating", source="tiltfile")
        loop = asyncio.get_running_loop()

        def on_output(line: str) -> None:
            loop.call_soon_threadsafe(functools.partial(
                self.logs.append, TILTFILE_RESOURCE, line, source="tiltfile"))

        # The evaluation's error is the reload's result (read below), not a task failure.
        running = spawn(asyncio.to_thread(self.evaluate, self.child, on_output),
                        name="tiltfile-evaluate", handled=True)
        changed_again = spawn(self._reload_wanted.wait(), name="tiltfile-changed-again")
        try:
            await asyncio.wait({running, changed_again}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self.child.cancel()
            changed_again.cancel()
            with contextlib.suppress(Exception):
                await running
            self.child.reset_cancel()
            raise
        changed_again.cancel()
        if not running.done():
            # An edit during a slow evaluation (a load-time local() that hangs): stop it and
            # let the loop evaluate the new files, instead of waiting out the old run.
            self.child.cancel()
            with contextlib.suppress(Exception):
                await running
            self.child.reset_cancel()
            self.logs.append(TILTFILE_RESOURCE, "Tiltfile changed again during evaluation: "
                             "stopped it to start over", source="tiltfile")
            return
        try:
            evaluation = running.result()
        except Exception as exc:  # TiltfileError, or a fault of the evaluator itself
            error = exc if isinstance(exc, TiltfileError) else TiltfileError(
                f"Tiltfile evaluation failed: {type(exc).__name__}: {exc}")
            self.last_error = error.render()
            self.logs.append(TILTFILE_RESOURCE, f"ERROR: {self.last_error}", source="tiltfile")
            self.logs.append(TILTFILE_RESOURCE, "keeping the last good state running",
                             source="tiltfile")
            raise_alert(publisher_of(self.engine.store), Alert(
                AlertType.TILTFILE, TILTFILE_RESOURCE, self.last_error,
                evidence=Evidence(tuple(self.logs.tail(TILTFILE_RESOURCE, EVIDENCE_LINES)))),
                current=self.engine.store)
            self.engine.store.put(k.SESSION.name, "tiltfile", status=k.SessionStatus(
                error=self.last_error).to_json())
            return
        for warning in evaluation.plan.warnings:  # once per evaluation, like its output
            self.logs.append(TILTFILE_RESOURCE, f"WARNING: {warning}", source="tiltfile")
        self.last_error = ""
        clear_alert(self.engine.store.delete, AlertType.TILTFILE, TILTFILE_RESOURCE,
                    current=self.engine.store)
        self.engine.store.put(k.SESSION.name, "tiltfile", status=k.SessionStatus().to_json())
        changed = await self.engine.replace_plan(evaluation.plan)
        self.logs.append(TILTFILE_RESOURCE, "Tiltfile loaded; changed resources: "
                         + (", ".join(changed) or "none"), source="tiltfile")
        self._watch(evaluation.plan)

    async def stop(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.child.cancel()
        await cancel_and_wait(self._task)
        self.child.close()
