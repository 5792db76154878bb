"""The reloader: an evaluation in a child process, its output streamed to the log, stopped
by a new change, and any failure reported while the last good plan keeps running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devloop.daemon.session import make_runner_factory
from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.reloader import TILTFILE_RESOURCE, Reloader
from devloop.engine.runner import RunnerHooks
from devloop.engine.store import Store
from devloop.tiltfile.evaluator import evaluate
from devloop.tiltfile.isolated import ChildEvaluator

RESOURCE = 'local_resource("{name}", cmd="true", trigger_mode=TRIGGER_MODE_MANUAL, ' \
           'auto_init=False)\n'


def _setup(tmp_path: Path, evaluate_fn=None) -> tuple[Engine, LogStore, Reloader, Path]:  # noqa: ANN001
    tiltfile = tmp_path / "Tiltfile"
    tiltfile.write_text(RESOURCE.format(name="first"))
    store, logs = Store(), LogStore()
    hooks = RunnerHooks(log=lambda r, t, s, p: logs.append(r, t, source=s, prefix=p),
                        changed=lambda: None)
    engine = Engine(evaluate(str(tiltfile)).plan, store=store, logs=logs,
                    runner_factory=make_runner_factory(hooks, None))

    def in_child(child: ChildEvaluator, on_output) -> object:  # noqa: ANN001
        return child.evaluate(str(tiltfile), on_output=on_output)

    return engine, logs, Reloader(engine, logs, evaluate_fn or in_child), tiltfile


def _log(logs: LogStore) -> list[str]:
    return [line.text for line in logs.lines(TILTFILE_RESOURCE)]


async def _wait_for(predicate, timeout: float = 30) -> None:  # noqa: ANN001
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_reload_streams_output_and_applies_the_new_plan(tmp_path: Path) -> None:
    engine, logs, reloader, tiltfile = _setup(tmp_path)
    try:
        tiltfile.write_text('print("hello from the child")\n' + RESOURCE.format(name="second"))
        await reloader.reload()
        assert "hello from the child" in _log(logs)
        assert [r.name for r in engine.plan.resources] == ["second"]
        assert reloader.last_error == ""
    finally:
        await reloader.stop()
        await engine.close()


async def test_an_evaluator_fault_is_reported_and_the_next_reload_works(tmp_path: Path) -> None:
    calls: list[int] = []

    def flaky(child: ChildEvaluator, on_output) -> object:  # noqa: ANN001
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("evaluator bug")
        return child.evaluate(str(tmp_path / "Tiltfile"), on_output=on_output)

    engine, logs, reloader, tiltfile = _setup(tmp_path, flaky)
    try:
        await reloader.reload()
        assert "ValueError: evaluator bug" in reloader.last_error
        assert engine.store.get("alert", "tiltfile") is not None
        tiltfile.write_text(RESOURCE.format(name="third"))
        await reloader.reload()
        assert [r.name for r in engine.plan.resources] == ["third"]
        assert engine.store.get("alert", "tiltfile") is None
    finally:
        await reloader.stop()
        await engine.close()


async def test_a_change_during_a_hanging_evaluation_stops_it(tmp_path: Path) -> None:
    engine, logs, reloader, tiltfile = _setup(tmp_path)
    marker = tmp_path / "survived"
    try:
        tiltfile.write_text(f'local("sleep 2 && touch {marker}; sleep 600")\n'
                            + RESOURCE.format(name="never"))
        running = asyncio.create_task(reloader.reload())
        await _wait_for(lambda: any("local: sleep 2" in line for line in _log(logs)))
        reloader.request_reload()
        await asyncio.wait_for(running, 20)
        assert any("changed again during evaluation" in line for line in _log(logs))
        assert [r.name for r in engine.plan.resources] == ["first"]
        await asyncio.sleep(2.5)
        assert not marker.exists(), "the hanging command must be killed"
    finally:
        await reloader.stop()
        await engine.close()


async def test_each_reload_logs_its_warnings_once(tmp_path: Path) -> None:
    engine, logs, reloader, tiltfile = _setup(tmp_path)
    warning = ("WARNING: docker_prune_settings: parameter 'max_age_mins' is ignored: "
               "devloop prunes by `disable` only")
    try:
        tiltfile.write_text("docker_prune_settings(max_age_mins=60)\nwarn('careful')\n"
                            + RESOURCE.format(name="second"))
        await reloader.reload()
        lines = _log(logs)
        assert lines.count(warning) == 1 and lines.count("WARNING: careful") == 1
        assert lines.index("WARNING: careful") < lines.index(warning) \
            < next(i for i, line in enumerate(lines) if line.startswith("Tiltfile loaded"))
        await reloader.reload()
        assert _log(logs).count(warning) == 2
        tiltfile.write_text(RESOURCE.format(name="third"))
        await reloader.reload()
        assert _log(logs).count(warning) == 2
    finally:
        await reloader.stop()
        await engine.close()


async def test_a_failed_reload_logs_no_warning(tmp_path: Path) -> None:
    engine, logs, reloader, tiltfile = _setup(tmp_path)
    try:
        tiltfile.write_text("docker_prune_settings(max_age_mins=60)\nfail('broken')\n")
        await reloader.reload()
        assert not any(line.startswith("WARNING") for line in _log(logs))
        assert "broken" in reloader.last_error
    finally:
        await reloader.stop()
        await engine.close()
