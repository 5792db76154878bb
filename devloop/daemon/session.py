"""The composition root of `devloop up` and `devloop ci`: wires store, engine, runners, UI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from devloop.daemon.preload import preload_cluster
from devloop.engine.ci import DEFAULT_TIMEOUT_SECONDS, CiOutcome, wait_for_outcome
from devloop.engine.engine import Engine
from devloop.engine.health_wiring import watch_session
from devloop.engine.logs import LogStore
from devloop.engine.reloader import Reloader
from devloop.engine.runner import RunnerHooks, UpdateError
from devloop.engine.runner_registry import (
    TeardownContext,
    make_runner_factory,
    needs_cluster,
    tear_down,
)
from devloop.engine.store import Store
from devloop.hud.plain import PlainPrinter, ci_summary
from devloop.hud.wiring import run_ui
from devloop.model import plan as p
from devloop.model.background import spawn
from devloop.server.app import RunningServer, start_server
from devloop.server.engine_actions import EngineActions
from devloop.tiltfile.isolated import evaluate_in_child_async

if TYPE_CHECKING:
    # Imported when used: a project without Kubernetes resources never loads the kubernetes
    # and docker clients (about 20 MB of the daemon's memory), and the daemon never loads
    # starlark-go (the Tiltfile runs in a child process).
    from devloop.engine.cluster import Cluster
    from devloop.tiltfile.evaluation import Evaluation

# `up` shows its terminal UI only once the Tiltfile has run: until then, a Tiltfile that takes
# long (a slow `local()` at load time) is announced on stderr this often, with its last line.
_STILL_EVALUATING_SECONDS = 5.0


async def _first_evaluation(path: str, tiltfile_args: tuple[str, ...], mode: str,
                            logs: LogStore) -> Evaluation:
    """The first run of the Tiltfile, its output streamed into the log as it is printed
    (`ci` prints the log live) instead of after the run."""
    loop = asyncio.get_running_loop()
    last_line = [""]

    def on_output(line: str) -> None:  # called from the evaluation's thread
        last_line[0] = line
        loop.call_soon_threadsafe(
            functools.partial(logs.append, "(Tiltfile)", line, source="tiltfile"))

    running = spawn(evaluate_in_child_async(
        path, args=tiltfile_args, subcommand=mode, on_output=on_output),
        name="first evaluation", handled=True)
    started = loop.time()
    while True:
        try:
            done, _ = await asyncio.wait({running}, timeout=_STILL_EVALUATING_SECONDS)
        except asyncio.CancelledError:
            running.cancel()  # kills the child and the commands it started
            with contextlib.suppress(asyncio.CancelledError):
                await running
            raise
        if done:
            return running.result()
        if mode != "ci":
            waited = loop.time() - started
            tail = f"; last output: {last_line[0]}" if last_line[0] else ""
            print(f"devloop: the Tiltfile is still running ({waited:.0f} s){tail}",
                  file=sys.stderr, flush=True)


def _timeout(options: argparse.Namespace, plan: p.Plan) -> float:
    from devloop.model.durations import parse_duration

    if getattr(options, "timeout", ""):
        return parse_duration(options.timeout)
    if plan.settings.ci.timeout_secs:
        return float(plan.settings.ci.timeout_secs)
    return float(DEFAULT_TIMEOUT_SECONDS)


async def run_session(options: argparse.Namespace, tiltfile_args: tuple[str, ...]) -> int:
    mode = options.command
    store, logs = Store(), LogStore()
    if mode == "ci":
        PlainPrinter().attach(logs)
    preload = preload_cluster(options.file)  # while the Tiltfile runs (see preload.py)
    evaluation = await _first_evaluation(options.file, tiltfile_args, mode, logs)
    plan = evaluation.plan
    for warning in plan.warnings:
        logs.append("(Tiltfile)", f"WARNING: {warning}", source="tiltfile")

    engine_ref: list[Engine] = []
    hooks = RunnerHooks(
        log=lambda resource, text, source, prefix: logs.append(resource, text, source=source,
                                                                prefix=prefix),
        changed=lambda: engine_ref[0].wake() if engine_ref else None,
        publish=lambda kind, name, spec, status: store.put(kind, name, spec=spec,
                                                            status=status),
        delete=store.delete)
    cluster: Cluster | None = None
    if needs_cluster(plan):
        if preload is not None:
            await preload
        from devloop.engine.cluster import Cluster

        cluster = await Cluster.connect(plan, log=lambda text: logs.append(
            "(Tiltfile)", text, source="tiltfile"))
    on_removed = None
    if cluster is not None:
        teardown = TeardownContext(kube=cluster.kube)

        async def on_removed(resource: p.Resource) -> None:
            def say(text: str) -> None:
                logs.append(resource.name, text, source="build")

            await tear_down(resource, engine.plan, teardown, say)

    engine = Engine(plan, store=store, logs=logs,
                    runner_factory=make_runner_factory(hooks, cluster),
                    on_removed=on_removed)
    engine_ref.append(engine)
    # A crash of the engine's loop is said at once (the session's log, an alert), not only
    # when _shut_down awaits the task: until then nothing would update.
    engine_task = spawn(engine.run(), name="engine",
                        on_error=engine.task_reporter("(Tiltfile)"))
    # Alerts within seconds when a part of the cluster fails; updates again when it returns.
    health = None if cluster is None else watch_session(cluster, engine)
    # `devloop args` replaces the Tiltfile args for the next reload.
    args_now = [tuple(tiltfile_args)]
    reloader = None if mode == "ci" else Reloader(
        engine, logs, lambda child, on_output: child.evaluate(
            options.file, args=args_now[0], subcommand=mode, on_output=on_output))
    actions = EngineActions(engine, reloader, lambda args: args_now.__setitem__(0, tuple(args)),
                            initial_args=tiltfile_args)
    server = None
    try:
        server = await _start_server(options, mode, store, logs, actions)
        if reloader is None:
            outcome = await wait_for_outcome(engine, _timeout(options, plan))
            _write_ci_reports(options, engine, logs, outcome)
            return _report_ci(engine, logs, outcome)
        reloader.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            url = server.url if server is not None else ""
            await run_ui(options, store, logs, actions, url, stop)
        finally:
            await reloader.stop()
        return 0
    finally:
        if health is not None:
            await health.stop()
        await _shut_down(server, engine, engine_task, cluster)


async def _shut_down(server: RunningServer | None, engine: Engine,
                     engine_task: asyncio.Task[None], cluster: Cluster | None) -> None:
    """Stop everything we started, each step on its own: a step that fails is reported and
    never hides the session's result or skips the steps after it."""
    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = []
    if server is not None:
        steps.append(("API server", server.stop))
    engine_task.cancel()
    steps.append(("engine", lambda: _await_cancelled(engine_task)))
    steps.append(("resources", engine.close))
    if cluster is not None:
        steps.append(("cluster connection", cluster.close))
    for what, step in steps:
        try:
            await step()
        except Exception as exc:  # shutting down: report, carry on
            print(f"devloop: error while stopping the {what}: {exc!r}", file=sys.stderr)


async def _await_cancelled(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _start_server(options: argparse.Namespace, mode: str, store: Store, logs: LogStore,
                        actions: EngineActions) -> RunningServer | None:
    """The API and dashboard. A busy port stops `up` with a clear error; `ci` runs on
    without them (a developer's `devloop up` may hold the default port)."""
    try:
        server = await start_server(store=store, logs=logs, actions=actions,
                                    host=options.host, port=options.port)
    except OSError as exc:
        message = (f"cannot serve the API on {options.host}:{options.port}: {exc.strerror} "
                   "(another devloop up? use --port)")
        if mode != "ci":
            raise UpdateError(message) from None
        logs.append("(Tiltfile)", f"WARNING: {message}", source="tiltfile")
        return None
    logs.append("(Tiltfile)", f"API and dashboard: {server.url}", source="tiltfile")
    return server


def _report_ci(engine: Engine, logs: LogStore, outcome: CiOutcome) -> int:
    print(flush=True)
    print(ci_summary(engine.views(), engine.store, logs, outcome), end="", flush=True)
    return 0 if outcome.ok else 1


def _write_ci_reports(options: argparse.Namespace, engine: Engine, logs: LogStore,
                      outcome: CiOutcome) -> None:
    """--junit-xml, --report-json and GitHub annotations (devloop.reports)."""
    from devloop.reports import write_ci_reports

    write_ci_reports(store=engine.store, logs=logs, ok=outcome.ok,
                     failed_resource=outcome.failed_resource, message=outcome.message,
                     started=outcome.started, finished=outcome.finished,
                     ready_after=outcome.ready_after, names=[v.name for v in engine.views()],
                     junit_xml=getattr(options, "junit_xml", ""),
                     report_json=getattr(options, "report_json", ""))
