"""Update traces: phases from the save to the first answer, the summary line, the build
object's status, and the tracer that later tasks (monitor, logs, forwards) record into."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devloop.engine import trace as trace_engine
from devloop.engine.store import Store
from devloop.engine.trace import TraceBook
from devloop.engine.watcher import FileWatcher
from devloop.model import trace as t
from devloop.model.trace import FileNotice, Phase, Point, TraceState, UpdateTrace


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def no_current_tracer():
    """`TraceBook.begin` makes its tracer current in the caller's context: not past a test."""
    token = t.CURRENT.set(None)
    yield
    t.CURRENT.reset(token)


def book_with(clock: FakeClock) -> tuple[TraceBook, Store, list[tuple[str, str]]]:
    store = Store()
    said: list[tuple[str, str]] = []
    return TraceBook(store, lambda name, text: said.append((name, text)), clock=clock), store, said


def put_build(store: Store, name: str) -> None:
    store.put("build", name, spec={"resource": name.rsplit("-", 1)[0]},
              status={"startTime": 0, "duration": 1.0, "error": ""})


def test_marked_phases_follow_each_other_and_add_up_to_the_total():
    clock = FakeClock()
    trace = UpdateTrace("api", "api-1", origin=clock(), clock=clock)
    for name, seconds in ((Phase.PREPARE, 0.05), (Phase.BUILD, 2.2), (Phase.PUSH, 0.4),
                          (Phase.APPLY, 0.1), (Phase.ROLLOUT, 0.5)):
        clock.advance(seconds)
        trace.mark(name)
    assert [s.name for s in trace.phases] == ["prepare", "build", "push", "apply", "rollout"]
    assert all(a.end == b.start for a, b in zip(trace.phases, trace.phases[1:], strict=False))
    assert trace.total() == pytest.approx(3.25)
    assert trace.covered() == pytest.approx(trace.total())
    assert trace.summary() == ("3.2 s: prepare 50 ms, build 2.2 s, push 0.4 s, apply 0.1 s, "
                               "rollout 0.5 s")


def test_the_summary_names_time_no_phase_accounts_for_and_leaves_out_tiny_phases():
    trace = UpdateTrace("api", "api-1", origin=0.0)
    trace.add(Phase.NOTICE, 0.0, 0.004)
    trace.add(Phase.BUILD, 0.004, 2.0)
    trace.add(Phase.APPLY, 2.5, 3.0)
    assert trace.summary() == "3.0 s: build 2.0 s, apply 0.5 s, other 0.5 s"


def test_parallel_spans_of_one_phase_count_once():
    trace = UpdateTrace("api", "api-1", origin=0.0)
    trace.add(Phase.SYNC, 0.0, 0.3, container="a")
    trace.add(Phase.SYNC, 0.1, 0.4, container="b")
    assert trace.by_phase() == [("sync", pytest.approx(0.4))]
    assert trace.covered() == pytest.approx(0.4)


def test_a_span_is_recorded_even_when_its_block_fails():
    clock = FakeClock()
    trace = UpdateTrace("api", "api-1", origin=clock(), clock=clock)
    with pytest.raises(RuntimeError), trace.span(Phase.PUSH, image="api"):
        clock.advance(0.3)
        raise RuntimeError("registry down")
    [push] = trace.phases
    assert push.duration == pytest.approx(0.3)
    assert push.attrs == {"image": "api", "error": "RuntimeError"}


def test_steps_are_capped_and_the_rest_counted():
    trace = UpdateTrace("api", "api-1", origin=0.0)
    for index in range(t.MAX_STEPS + 5):
        trace.add(f"#{index}", 0.0, 0.1, parent=Phase.BUILD)
    assert len(trace.steps) == t.MAX_STEPS
    assert trace.to_json()["droppedSteps"] == 5


def test_notice_phases_start_at_the_mtime_and_end_when_the_update_starts():
    trace = UpdateTrace("api", "api-1", origin=10.5)
    t.notice_spans(trace, [FileNotice("/p/b.py", 10.02, 10.03, 10.13),
                           FileNotice("/p/a.py", 10.0, 10.001, 10.13)], started=10.5)
    assert trace.origin == 10.0
    assert [(s.name, round(s.start, 3), round(s.end, 3)) for s in trace.phases] == [
        ("notice", 10.0, 10.001), ("debounce", 10.001, 10.13), ("queue", 10.13, 10.5)]
    assert trace.points[0].attrs == {"file": "/p/a.py"}


@pytest.mark.parametrize("saved", [0.0, 10.0 - t.MAX_SAVE_TO_NOTICE_SECONDS - 1, 10.2])
def test_an_unknown_old_or_later_mtime_starts_the_trace_when_the_file_was_noticed(saved):
    trace = UpdateTrace("api", "api-1", origin=11.0)
    t.notice_spans(trace, [FileNotice("/p/a.py", saved, 10.0, 10.1)], started=11.0)
    assert trace.origin == 10.0


def test_the_book_publishes_the_trace_in_the_build_object_and_says_where_the_time_went():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    book.noticed("web", [FileNotice("/p/index.html", 99.0, 99.01, 99.11)])
    trace = book.begin("web", "web-2", ["/p/index.html"], started=99.2)
    assert t.current() is book.tracer("web")
    clock.advance(0.2)
    t.mark(Phase.SYNC)
    put_build(store, "web-2")
    book.finish(trace, failed=False)
    status = store.get("build", "web-2").status
    assert status["duration"] == 1.0  # what the engine wrote stays
    assert status["trace"]["state"] == "ready"
    assert [s["name"] for s in status["trace"]["spans"]] == ["notice", "debounce", "queue",
                                                             "sync"]
    assert status["trace"]["total"] == pytest.approx(1.2)
    assert said == [("web", "Save to ready in 1.2 s: notice 10 ms, debounce 0.1 s, "
                            "queue 90 ms, sync 1.0 s")]


def test_a_runner_without_steps_of_its_own_gets_one_update_phase():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    trace = book.begin("tests", "tests-1", [], started=100.0)
    clock.advance(1.5)
    put_build(store, "tests-1")
    book.finish(trace, failed=False)
    assert [s.name for s in trace.phases] == ["update"]
    assert said == [("tests", "Update to ready in 1.5 s: update 1.5 s")]


def test_a_failed_update_says_how_long_it_ran():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    trace = book.begin("api", "api-1", [], started=100.0)
    with pytest.raises(ValueError), t.span(Phase.BUILD):
        clock.advance(2.0)
        raise ValueError("bad Dockerfile")
    book.finish(trace, failed=True)
    assert trace.state == TraceState.FAILED
    assert said == [("api", "Update failed after 2.0 s: build 2.0 s")]


def full_update(book: TraceBook, store: Store, clock: FakeClock) -> UpdateTrace:
    trace = book.begin("api", "api-1", [], started=clock())
    tracer = book.tracer("api")
    tracer.log_line("api-old")
    clock.advance(2.0)
    t.mark(Phase.PREPARE)
    with t.span(Phase.BUILD, image="api"):
        clock.advance(1.0)
    tracer.applied({"kind": "Deployment", "metadata": {"name": "api", "namespace": "ns",
                                                       "generation": 4}})
    t.mark(Phase.APPLY)
    put_build(store, "api-1")
    book.finish(trace, failed=False)
    return trace


def test_a_kubernetes_update_is_ready_only_when_the_monitor_says_so():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    trace = full_update(book, store, clock)
    tracer = book.tracer("api")
    assert trace.state == TraceState.WAITING and said == []
    clock.advance(0.1)
    # The watch is behind (the generation before), or has not seen it yet.
    tracer.observed(rolled_out=True, ready=True, generations={("Deployment", "api"): 3})
    tracer.observed(rolled_out=True, ready=True, generations={("Deployment", "api"): 0})
    assert not trace.has(Phase.ROLLOUT)
    fresh = {("Deployment", "api"): 4}
    clock.advance(0.9)
    tracer.observed(rolled_out=True, ready=False, generations=fresh)
    clock.advance(0.5)
    tracer.observed(rolled_out=True, ready=True, generations=fresh)
    assert [s.name for s in trace.phases][-3:] == ["apply", "rollout", "ready"]
    assert trace.state == TraceState.READY
    assert said == [("api", "Update to ready in 4.5 s: prepare 2.0 s, build 1.0 s, "
                            "rollout 1.0 s, ready 0.5 s")]
    assert store.get("build", "api-1").status["trace"]["state"] == "ready"


def test_the_first_answer_counts_only_on_a_connection_opened_once_ready():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    trace = full_update(book, store, clock)
    tracer = book.tracer("api")
    opened_early = clock()
    clock.advance(1.0)
    tracer.observed(rolled_out=True, ready=True)
    tracer.answered(opened_early)  # the old pod answering a request sent before
    assert not trace.has(Phase.ANSWER)
    opened = clock()
    clock.advance(0.25)
    tracer.answered(opened)
    tracer.answered(opened)
    assert [s.name for s in trace.phases].count("answer") == 1
    assert trace.state == TraceState.ANSWERED
    assert said[-1] == ("api", "First answer through a port-forward 4.2 s after the update "
                               "started (0.2 s after ready)")


def test_an_answer_right_after_the_rollout_ends_readiness_then():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    trace = full_update(book, store, clock)
    tracer = book.tracer("api")
    clock.advance(1.0)
    tracer.observed(rolled_out=True, ready=False)  # the forwards move to the new pods
    opened = clock()
    clock.advance(0.05)
    tracer.answered(opened)  # before the forward's own probe said it works
    clock.advance(0.05)
    tracer.observed(rolled_out=True, ready=True)
    assert [s.name for s in trace.phases][-3:] == ["rollout", "ready", "answer"]
    assert [s.duration for s in trace.phases][-2:] == [pytest.approx(0.05), 0.0]
    assert [text for _, text in said] == [
        "Update to ready in 4.0 s: prepare 2.0 s, build 1.0 s, rollout 1.0 s, ready 50 ms",
        "First answer through a port-forward 4.0 s after the update started (0 ms after ready)"]


def test_a_forward_moving_to_a_pod_the_apply_made_ends_the_rollout():
    clock = FakeClock(100.0)
    book, store, said = book_with(clock)
    book.tracer("api").forwarded("api-old")  # before the update: the old pod
    trace = full_update(book, store, clock)
    tracer = book.tracer("api")
    clock.advance(0.5)
    tracer.forwarded("api-old")
    assert not trace.has(Phase.ROLLOUT)
    clock.advance(0.5)
    tracer.forwarded("api-new")
    opened = clock()
    clock.advance(0.1)
    tracer.answered(opened)
    assert [(s.name, round(s.duration, 3)) for s in trace.phases][-3:] == [
        ("rollout", 1.0), ("ready", 0.1), ("answer", 0.0)]
    clock.advance(1.0)
    tracer.observed(rolled_out=True, ready=True)  # the workload's status catches up later
    assert [s.name for s in trace.phases][-1] == "answer"


def live_update_prepared(clock: FakeClock
                         ) -> tuple[TraceBook, Store, list[tuple[str, str]], UpdateTrace]:
    """A live update of `web` that has prepared (30 ms) and is about to sync."""
    book, store, said = book_with(clock)
    trace = book.begin("web", "web-2", [], started=clock())
    clock.advance(0.03)
    t.mark(Phase.PREPARE)
    return book, store, said, trace


def test_after_a_sync_a_request_that_reached_the_pod_during_it_can_be_the_answer():
    clock = FakeClock(100.0)
    book, store, said, trace = live_update_prepared(clock)
    before_sync = clock() - 0.01
    clock.advance(0.05)
    during_sync = clock()  # the file is in place before the exec's result is back
    clock.advance(0.05)
    t.mark(Phase.SYNC)
    put_build(store, "web-2")
    book.finish(trace, failed=False)
    tracer = book.tracer("web")
    clock.advance(0.01)
    tracer.answered(before_sync)
    assert not trace.has(Phase.ANSWER)
    tracer.answered(during_sync)
    assert [s.name for s in trace.phases][-2:] == ["sync", "answer"]


def test_after_run_steps_only_a_request_after_ready_is_the_answer():
    clock = FakeClock(100.0)
    book, store, _ = book_with(clock)
    trace = book.begin("web", "web-2", [], started=clock())
    clock.advance(0.05)
    t.mark(Phase.SYNC)
    during_run = clock() + 0.01
    clock.advance(0.05)
    t.mark(Phase.RUN)
    put_build(store, "web-2")
    book.finish(trace, failed=False)
    clock.advance(0.01)
    book.tracer("web").answered(during_run)
    assert not trace.has(Phase.ANSWER)


def test_the_first_new_log_line_is_from_a_pod_that_was_not_logging_before_the_apply():
    clock = FakeClock(100.0)
    book, store, _ = book_with(clock)
    trace = full_update(book, store, clock)
    tracer = book.tracer("api")
    tracer.log_line("api-old")
    tracer.log_line("")  # an event line about a pod, not the pod's output
    assert not trace.has_point(Point.FIRST_LOG)
    clock.advance(0.3)
    tracer.log_line("api-new")
    [first] = [p for p in trace.points if p.name == Point.FIRST_LOG]
    assert first.attrs == {"pod": "api-new"} and first.start == clock()
    published = store.get("build", "api-1").status["trace"]["points"]
    assert published[-1]["name"] == "first log line"


def test_the_next_update_supersedes_one_that_never_got_ready():
    clock = FakeClock(100.0)
    book, store, _ = book_with(clock)
    first = full_update(book, store, clock)
    book.begin("api", "api-2", [], started=clock())
    assert first.state == TraceState.SUPERSEDED
    assert store.get("build", "api-1").status["trace"]["state"] == "superseded"


def test_nothing_is_recorded_outside_an_update():
    async def outside() -> None:
        assert t.current() is None
        with t.span(Phase.BUILD) as attrs:
            attrs["cached"] = True
        t.mark(Phase.APPLY)
        t.step("#1", 0.0, 1.0, parent=Phase.BUILD)

    asyncio.run(outside())


def test_tasks_started_by_an_update_record_into_the_resource_s_newest_trace():
    clock = FakeClock(100.0)
    book, store, _ = book_with(clock)

    async def scenario() -> list[UpdateTrace]:
        traces: list[UpdateTrace] = []
        ready = asyncio.Event()

        async def monitor() -> None:  # started by the first update, outlives it
            await ready.wait()
            t.mark(Phase.APPLY)

        async def update(number: int) -> asyncio.Task[None] | None:
            traces.append(book.begin("api", f"api-{number}", [], started=clock()))
            return asyncio.create_task(monitor()) if number == 1 else None

        task = await asyncio.create_task(update(1))
        await asyncio.create_task(update(2))
        ready.set()
        assert task is not None
        await task
        return traces

    first, second = asyncio.run(scenario())
    assert not first.has(Phase.APPLY) and second.has(Phase.APPLY)


def test_the_watcher_says_when_each_file_was_saved_seen_and_sent(tmp_path: Path):
    target = tmp_path / "app.py"
    target.write_text("x = 1\n")

    async def run() -> dict[str, FileNotice]:
        got: list[frozenset[str]] = []
        watcher = FileWatcher(got.append, debounce=0.05)
        watcher._receive(str(target), 50.0, 49.5)
        watcher._receive(str(target), 50.02, 49.9)
        await asyncio.sleep(0.2)
        assert got == [frozenset({str(target)})]
        return watcher.notices

    notices = asyncio.run(run())
    notice = notices[str(target)]
    assert (notice.saved, notice.seen) == (49.9, 50.0)
    assert notice.sent > 50.0


def test_buildkit_steps_are_steps_of_the_build_phase_with_buildkit_s_own_times():
    import json
    from datetime import datetime

    from devloop.build.buildkit_progress import ProgressRenderer

    t0, t1 = "2026-01-01T00:00:00Z", "2026-01-01T00:00:01.5Z"
    statuses = [
        {"vertexes": [{"digest": "sha256:a", "name": "[internal] load build context",
                       "started": t0, "completed": t0}]},
        {"vertexes": [{"digest": "sha256:b", "name": "[2/3] COPY . /app", "cached": True,
                       "started": t0, "completed": t0}]},
        {"vertexes": [{"digest": "sha256:c", "name": "[3/3] RUN make", "started": t0}]},
        {"vertexes": [{"digest": "sha256:c", "name": "[3/3] RUN make", "started": t0,
                       "completed": t1}]},
    ]
    book, _, _ = book_with(FakeClock(100.0))
    trace = book.begin("api", "api-1", [], started=100.0)
    renderer = ProgressRenderer(lambda line: None)
    for status in statuses:
        renderer.feed_line(json.dumps(status))
    start = datetime.fromisoformat("2026-01-01T00:00:00+00:00").timestamp()
    assert [(s.name, s.parent, s.start - start, s.duration, s.attrs) for s in trace.steps] == [
        ("[2/3] COPY . /app", "build", 0.0, 0.0, {"number": 2, "cached": True}),
        ("[3/3] RUN make", "build", 0.0, 1.5, {"number": 3})]


def test_the_ci_summary_says_where_each_resource_s_last_update_spent_its_time():
    from devloop.engine.logs import LogStore
    from devloop.hud.plain import ci_summary, time_lines

    class View:
        def __init__(self, name: str) -> None:
            self.name = name

    class Outcome:
        ok, failed_resource, message = True, "", ""

    store = Store()
    for name, builds in (("api", 2), ("frontend-web", 1), ("never", 0)):
        store.put("resource", name, status={"builds": builds})
    store.put("build", "api-2", status={"trace": {
        "summary": "3.1 s: build 2.2 s, push 0.4 s, rollout 0.5 s", "state": "answered"}})
    store.put("build", "frontend-web-1", status={"trace": {
        "summary": "1.0 s: build 1.0 s", "state": "waiting"}})
    assert time_lines(["api", "frontend-web", "never"], store) == [
        "  api           3.1 s: build 2.2 s, push 0.4 s, rollout 0.5 s",
        "  frontend-web  1.0 s: build 1.0 s (not ready yet)"]
    text = ci_summary([View("api"), View("frontend-web")], store, LogStore(), Outcome())
    assert "Where the time went (each resource's last update, until ready):\n" \
           "  api           3.1 s: build 2.2 s, push 0.4 s, rollout 0.5 s\n" in text
    assert text.rstrip().endswith("SUCCESS. All workloads are healthy.")


def test_an_answer_that_comes_back_before_the_sync_ends_is_the_answer_at_ready():
    """The file is in place before the exec's result is back: a user polling the forward
    sees the new version while the update still runs, and may ask no more after that."""
    clock = FakeClock(100.0)
    book, store, said, trace = live_update_prepared(clock)
    tracer = book.tracer("web")
    tracer.answered(clock() - 0.01)  # asked before the sync began: the old version
    clock.advance(0.01)
    during_sync = clock()
    clock.advance(0.01)
    tracer.answered(during_sync)  # maybe the old version still
    clock.advance(0.02)
    tracer.answered(clock() - 0.005)  # the last one before the exec's result is back
    clock.advance(0.04)
    t.mark(Phase.SYNC)
    put_build(store, "web-2")
    book.finish(trace, failed=False)  # no event loop here: settled at once
    assert trace.state == TraceState.ANSWERED
    assert [s.name for s in trace.phases][-2:] == ["sync", "answer"]
    assert trace.phases[-1].attrs["before_ready"] == 0.04
    assert any("before the sync's result was back" in text for _, text in said)


async def test_an_answer_after_ready_wins_over_one_during_the_update():
    clock = FakeClock(100.0)
    book, store, _, trace = live_update_prepared(clock)
    tracer = book.tracer("web")
    clock.advance(0.01)
    tracer.answered(clock())  # during the sync: the old version, as it turns out
    clock.advance(0.04)
    t.mark(Phase.SYNC)
    put_build(store, "web-2")
    book.finish(trace, failed=False)
    assert trace.state == TraceState.READY
    clock.advance(0.02)
    tracer.answered(clock() - 0.01)  # the client asked again after ready
    assert trace.state == TraceState.ANSWERED
    assert trace.phases[-1].duration == pytest.approx(0.02)
    assert "before_ready" not in trace.phases[-1].attrs
    await asyncio.sleep(trace_engine.EARLY_ANSWER_GRACE_SECONDS + 0.05)
    assert [s.name for s in trace.phases].count("answer") == 1


def test_an_answer_during_a_sync_on_a_connection_opened_before_it_is_not_the_answer():
    clock = FakeClock(100.0)
    book, store, _, trace = live_update_prepared(clock)
    opened = clock() - 0.01
    clock.advance(0.05)
    book.tracer("web").answered(opened)
    t.mark(Phase.SYNC)
    put_build(store, "web-2")
    book.finish(trace, failed=False)
    assert trace.state == TraceState.READY
    assert not trace.has(Phase.ANSWER)
