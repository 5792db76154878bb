"""The composition root of `devloop up` and `devloop ci`: wires store, engine, runners, UI."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable

from devloop.engine.ci import DEFAULT_TIMEOUT_SECONDS, CiOutcome, wait_for_outcome
from devloop.engine.engine import Engine
from devloop.engine.local_runner import LocalRunner
from devloop.engine.logs import LogLine, LogStore
from devloop.engine.reloader import Reloader
from devloop.engine.runner import ResourceRunner, RunnerHooks
from devloop.engine.store import Store
from devloop.tiltfile import plan as p
from devloop.tiltfile.evaluator import evaluate


def _plain_printer(stream: object = sys.stdout) -> Callable[[LogLine], None]:
    def emit(line: LogLine) -> None:
        prefix = f"{line.resource:>14} │ "
        if line.prefix:
            prefix += f"[{line.prefix}] "
        print(prefix + line.text, file=stream, flush=True)  # type: ignore[call-overload]

    return emit


def _environ(plan: p.Plan) -> dict[str, str]:
    env = dict(os.environ)
    env.update(dict(plan.environ))
    return env


def make_runner_factory(hooks: RunnerHooks, cluster: object | None
                        ) -> Callable[[p.Resource, p.Plan], ResourceRunner]:
    """Runners are made for a resource of a given plan: a reload makes new ones."""

    def factory(resource: p.Resource, plan: p.Plan) -> ResourceRunner:
        if resource.type == p.ResourceType.LOCAL:
            return LocalRunner(resource, environ=_environ(plan), hooks=hooks)
        if resource.type == p.ResourceType.K8S:
            from devloop.engine.k8s_runner import K8sRunner

            return K8sRunner(resource, plan=plan, cluster=cluster, hooks=hooks)
        from devloop.engine.unsupported import UnsupportedRunner

        return UnsupportedRunner(resource)

    return factory


def _timeout(options: argparse.Namespace, plan: p.Plan) -> float:
    from devloop.cli import parse_duration

    if getattr(options, "timeout", ""):
        return parse_duration(options.timeout)
    if plan.settings.ci.timeout_secs:
        return float(plan.settings.ci.timeout_secs)
    return float(DEFAULT_TIMEOUT_SECONDS)


async def run_session(options: argparse.Namespace, tiltfile_args: tuple[str, ...]) -> int:
    mode = options.command
    evaluation = evaluate(options.file, args=tiltfile_args, subcommand=mode)
    plan = evaluation.plan
    store, logs = Store(), LogStore()
    logs.add_listener(_plain_printer())
    for line in evaluation.output:
        logs.append("(Tiltfile)", line, source="tiltfile")
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
    cluster = None
    if any(r.type == p.ResourceType.K8S for r in plan.resources):
        from devloop.engine.cluster import Cluster

        cluster = await Cluster.connect(plan, log=lambda text: logs.append(
            "(Tiltfile)", text, source="tiltfile"))
    on_removed = None
    if cluster is not None:
        from devloop.engine.down import delete_owned

        async def on_removed(resource: p.Resource) -> None:
            await delete_owned(cluster.kube, resource, delete_namespaces=False,
                               say=lambda text: logs.append(resource.name, text,
                                                            source="build"))

    engine = Engine(plan, store=store, logs=logs,
                    runner_factory=make_runner_factory(hooks, cluster),
                    on_removed=on_removed)
    engine_ref.append(engine)
    engine_task = asyncio.create_task(engine.run(), name="engine")
    try:
        if mode == "ci":
            outcome = await wait_for_outcome(engine, _timeout(options, plan))
            return _report_ci(engine, logs, outcome)
        reloader = Reloader(engine, logs, lambda: evaluate(
            options.file, args=tiltfile_args, subcommand=mode))
        reloader.start()
        try:
            await _wait_for_interrupt()
        finally:
            await reloader.stop()
        return 0
    finally:
        engine_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await engine_task
        await engine.close()
        if cluster is not None:
            await cluster.close()


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _report_ci(engine: Engine, logs: LogStore, outcome: CiOutcome) -> int:
    print("", flush=True)
    print(f"{'RESOURCE':<24} {'UPDATE':<12} {'RUNTIME':<14} BUILDS")
    for view in engine.views():
        builds = engine.store.get("resource", view.name)
        count = builds.status.get("builds", 0) if builds else 0
        print(f"{view.name:<24} {view.update.value:<12} {view.runtime.value:<14} {count}")
    if outcome.ok:
        print("SUCCESS. All workloads are healthy.", flush=True)
        return 0
    print(f"ERROR: resource {outcome.failed_resource!r}: {outcome.message}", flush=True)
    if outcome.failed_resource:
        print(f"Last log lines of {outcome.failed_resource}:")
        for line in logs.tail(outcome.failed_resource, 40):
            print(f"  {line}")
    return 1
