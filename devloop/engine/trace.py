"""The engine's side of update traces: begin one per update, publish it, say where the time went.

Each update's trace (`devloop.model.trace`) is published as `status.trace` of its `build`
object (`devloop get build api-3 -o yaml`, the dashboard's Facets), again whenever it
reaches a milestone after the update itself (rollout, ready, first log line, first answer
through a port-forward). When the resource is ready (a Kubernetes update: its pods and
port-forwards; any other: its update is done) one line in the resource's log says where
the time went:

    Save to ready in 3.1 s: notice 4 ms, debounce 0.1 s, build 2.2 s, push 0.4 s, rollout 0.5 s

and the first answer through a port-forward, when one comes, gets its own line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from devloop.engine.store import Store
from devloop.model.trace import (
    CURRENT,
    Clock,
    FileNotice,
    Phase,
    Tracer,
    TraceState,
    UpdateTrace,
    format_seconds,
    notice_spans,
)

BUILD_KIND = "build"
# Notices of files whose update never came (a manual resource never triggered, a
# resource removed by a reload) are dropped after this long.
NOTICE_TTL_SECONDS = 3600.0
# Phases that happen before an update starts; any other phase means the runner recorded
# its own steps.
_BEFORE_UPDATE = {Phase.NOTICE, Phase.DEBOUNCE, Phase.QUEUE}

# After a live update that answers came back during: how long an answer after ready may
# take to come before one of those counts (a client polling every few hundred ms asks
# again within it; one that saw the new version and stopped does not).
EARLY_ANSWER_GRACE_SECONDS = 0.5

LogFn = Callable[[str, str], None]  # resource, text


class TraceBook:
    """Every resource's tracer, the notices of changed files not yet updated, and the
    publishing of each trace into its build object."""

    def __init__(self, store: Store, log: LogFn, *, clock: Clock = time.time) -> None:
        self._store = store
        self._log = log
        self._clock = clock
        self._tracers: dict[str, Tracer] = {}
        self._notices: dict[tuple[str, str], FileNotice] = {}

    def tracer(self, resource: str) -> Tracer:
        tracer = self._tracers.get(resource)
        if tracer is None:
            tracer = Tracer(resource, clock=self._clock, on_change=self._on_change)
            self._tracers[resource] = tracer
        return tracer

    def noticed(self, resource: str, notices: Iterable[FileNotice]) -> None:
        """The watcher saw these files of `resource` change: keep the earliest notice of
        each until an update takes the file."""
        now = self._clock()
        for key in [k for k, n in self._notices.items() if now - n.seen > NOTICE_TTL_SECONDS]:
            del self._notices[key]
        for notice in notices:
            self._notices.setdefault((resource, notice.path), notice)

    def begin(self, resource: str, build: str, files: Iterable[str],
              started: float) -> UpdateTrace:
        """A trace for the update that starts now, made current for the calling task
        (and every task it starts)."""
        tracer = self.tracer(resource)
        previous = tracer.current
        if previous is not None and previous.state in (TraceState.OPEN, TraceState.WAITING):
            previous.state = TraceState.SUPERSEDED
            self._publish(previous)
        trace = UpdateTrace(resource, build, origin=started, clock=self._clock)
        notices = [n for n in (self._notices.pop((resource, f), None) for f in files) if n]
        notice_spans(trace, notices, started)
        tracer.current = trace
        CURRENT.set(tracer)
        return trace

    def finish(self, trace: UpdateTrace, *, failed: bool) -> None:
        """The runner's update returned (or raised): publish, and say where the time went
        unless the rollout is still to come."""
        now = self._clock()
        trace.update_end = now
        if all(span.name in _BEFORE_UPDATE for span in trace.phases):
            trace.mark(Phase.UPDATE, now)  # a runner that records no steps of its own
        if trace.state == TraceState.SUPERSEDED:
            pass
        elif failed:
            trace.state = TraceState.FAILED
            self._log(trace.resource, f"Update failed after {trace.summary()}")
        elif trace.has(Phase.APPLY):
            trace.state = TraceState.WAITING  # the runtime monitor marks rollout and ready
        else:
            trace.state = TraceState.READY
            self._say_ready(trace)
            if trace.early_answers:
                self._settle_later(trace)
        self._publish(trace)

    def _settle_later(self, trace: UpdateTrace) -> None:
        """Answers came back while the live update ran: one that comes after ready is
        the answer (see `Tracer.answered`); if none comes soon, whoever asked already saw
        the new version during the update (see `Tracer.settle_answers`)."""
        def settle() -> None:
            if self.tracer(trace.resource).settle_answers(trace):
                self._on_change(trace, "answer")

        try:
            asyncio.get_running_loop().call_later(EARLY_ANSWER_GRACE_SECONDS, settle)
        except RuntimeError:  # no event loop (a synchronous caller): decide now
            settle()

    def _say_ready(self, trace: UpdateTrace) -> None:
        since = "Save" if trace.has(Phase.NOTICE) else "Update"
        self._log(trace.resource, f"{since} to ready in {trace.summary()}")

    def _on_change(self, trace: UpdateTrace, what: str) -> None:
        if what == "ready":
            self._say_ready(trace)
        elif what == "answer":
            since = "the save" if trace.has(Phase.NOTICE) else "the update started"
            answers = [s for s in trace.phases if s.name == Phase.ANSWER]
            early = next((s.attrs["before_ready"] for s in answers
                          if "before_ready" in s.attrs), None)
            when = (f"{format_seconds(sum(s.duration for s in answers))} after ready"
                    if early is None else
                    f"{format_seconds(early)} before the sync's result was back")
            self._log(trace.resource, f"First answer through a port-forward "
                      f"{format_seconds(trace.total())} after {since} ({when})")
        self._publish(trace)

    def _publish(self, trace: UpdateTrace) -> None:
        if self._store.get(BUILD_KIND, trace.build) is not None:
            self._store.update_status(BUILD_KIND, trace.build, trace=trace.to_json())
