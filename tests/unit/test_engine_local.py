"""The engine with local resources: ordering, ci judging, serve_cmd and failures."""

from __future__ import annotations

import asyncio

from devloop.daemon.session import make_runner_factory
from devloop.engine.ci import wait_for_outcome
from devloop.engine.engine import Engine
from devloop.engine.logs import LogStore
from devloop.engine.runner import RunnerHooks
from devloop.engine.store import Store


async def run_ci(plan, timeout=20.0):
    store, logs = Store(), LogStore()
    engine_ref = []
    hooks = RunnerHooks(log=lambda r, t, s, p: logs.append(r, t, source=s, prefix=p),
                        changed=lambda: engine_ref[0].wake() if engine_ref else None)
    engine = Engine(plan, store=store, logs=logs,
                    runner_factory=make_runner_factory(hooks, None))
    engine_ref.append(engine)
    task = asyncio.create_task(engine.run())
    try:
        outcome = await wait_for_outcome(engine, timeout)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await engine.close()
    return outcome, logs, store


async def test_dependent_local_resource_runs_after_its_dependency(tiltfile, tmp_path):
    plan = tiltfile("""
        local_resource("second", cmd="echo second >> order.txt", resource_deps=["first"])
        local_resource("first", cmd="sleep 0.2; echo first >> order.txt")
    """).plan
    outcome, logs, store = await run_ci(plan)
    assert outcome.ok, outcome
    assert (tmp_path / "order.txt").read_text().split() == ["first", "second"]
    assert store.get("resource", "second").status["updateStatus"] == "ok"
    assert [b.spec["resource"] for b in store.list("build")] == ["first", "second"]


async def test_failing_cmd_fails_ci_with_its_output(tiltfile):
    plan = tiltfile('local_resource("broken", cmd="echo the reason; exit 4")\n').plan
    outcome, logs, store = await run_ci(plan)
    assert not outcome.ok
    assert outcome.failed_resource == "broken"
    assert "exit code 4" in outcome.message
    assert "the reason" in logs.tail("broken", 10)
    assert store.get("alert", "broken-update") is not None


async def test_serve_cmd_is_ready_when_its_probe_passes(tiltfile):
    plan = tiltfile("""
        local_resource("server", serve_cmd="sleep 0.3; touch ready; sleep 30",
                       readiness_probe=probe(period_secs=1,
                                             exec=exec_action(["test", "-f", "ready"])))
    """).plan
    outcome, logs, store = await run_ci(plan)
    assert outcome.ok, outcome
    assert store.get("resource", "server").status["runtimeStatus"] == "ok"


async def test_serve_cmd_that_exits_is_a_runtime_error(tiltfile):
    plan = tiltfile('local_resource("dies", serve_cmd="echo bye; exit 1")\n').plan
    outcome, logs, store = await run_ci(plan)
    assert not outcome.ok
    assert "serve_cmd exited with code 1" in outcome.message


async def test_auto_init_false_resources_are_not_waited_for(tiltfile):
    plan = tiltfile("""
        local_resource("later", cmd="exit 1", auto_init=False)
        local_resource("now", cmd="true")
    """).plan
    outcome, _, store = await run_ci(plan)
    assert outcome.ok
    assert store.get("resource", "later").status["updateStatus"] == "none"


async def test_ci_times_out_naming_what_it_waited_for(tiltfile):
    plan = tiltfile('local_resource("slow", serve_cmd="sleep 30", '
                    'readiness_probe=probe(exec=exec_action(["false"]), period_secs=1))\n').plan
    outcome, _, _ = await run_ci(plan, timeout=1.0)
    assert not outcome.ok
    assert "timeout" in outcome.message and "slow" in outcome.message


async def test_ci_waits_for_success_to_hold_so_a_quick_crash_is_caught(tiltfile):
    # Ready as soon as it starts (no probe), then dies: like a container that exits
    # right after starting.
    plan = tiltfile('local_resource("flaky", serve_cmd="sleep 0.5; exit 2")\n').plan
    outcome, _, _ = await run_ci(plan)
    assert not outcome.ok
    assert "serve_cmd exited with code 2" in outcome.message


LONG_LINE = "printf '%*s\\n' 200000 '' | tr ' ' x"


async def test_cmd_with_an_output_line_over_64_kib_succeeds_and_logs_all_of_it(tiltfile):
    plan = tiltfile(f'local_resource("long", cmd="{LONG_LINE}; echo after")\n').plan
    outcome, logs, store = await run_ci(plan)
    assert outcome.ok, outcome
    texts = [line.text for line in logs.lines("long") if line.source == "local"]
    assert texts[-1] == "after"
    pieces = [text for text in texts if text and set(text) == {"x"}]
    assert len(pieces) > 1 and "".join(pieces) == "x" * 200000  # in pieces, none lost
    assert store.get("resource", "long").status["updateStatus"] == "ok"


async def test_serve_cmd_keeps_logging_after_an_output_line_over_64_kib(tiltfile):
    plan = tiltfile(f"""
        local_resource("server", serve_cmd="{LONG_LINE}; echo still here; touch ready; sleep 30",
                       readiness_probe=probe(period_secs=1,
                                             exec=exec_action(["test", "-f", "ready"])))
    """).plan
    outcome, logs, _ = await run_ci(plan)
    assert outcome.ok, outcome
    assert "still here" in [line.text for line in logs.lines("server")]
