"""The change-to-ready trace of one update: when each step started and ended.

An `UpdateTrace` is a timeline that starts when the change was saved (the changed file's
mtime) and runs through the watcher noticing it, the update's build, push, apply, rollout
and readiness (or a live update's sync and run steps) to the first answer through a
port-forward. Its *phases* are the top-level spans, one after the other; *steps* are
spans inside a phase (a BuildKit step of a build, one container's sync). *Points* are
moments with no length (the first new log line).

The clock is `time.time`, the wall clock, so the timeline lines up with file mtimes and
with BuildKit's own step timestamps.

Who records what: the engine begins a trace per update and makes the resource's `Tracer`
the current one (a context variable, inherited by every task the update starts, which is
how the build pipeline, the runner and the port-forwards find it without a parameter
threaded through each call). Code that is not running for an update records nothing:
with no current tracer every call here is a no-op.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Clock = Callable[[], float]

# Detail spans (BuildKit steps, per-container syncs) kept per trace: a Dockerfile with
# hundreds of steps still gives a readable timeline and a small `build` object.
MAX_STEPS = 200
# A file whose mtime is further back than this from when the watcher saw it was not
# saved just now (`touch -d`, a copy that kept times, a checkout of an old file): the
# trace starts when it was noticed instead.
MAX_SAVE_TO_NOTICE_SECONDS = 60.0
# Phases shorter than this are left out of the summary line (they stay in the trace).
SUMMARY_MIN_SECONDS = 0.01


class Phase(StrEnum):
    """The phases of an update's timeline, in the order they usually happen."""

    NOTICE = "notice"  # the file was saved -> the watcher saw it
    DEBOUNCE = "debounce"  # -> the watcher's quiet period ended: a change set
    QUEUE = "queue"  # -> the update started (the scheduler, resource_deps, parallelism)
    PREPARE = "prepare"  # hashing the inputs, choosing a full or a live update
    BUILD = "build"  # one image (its BuildKit steps are its steps)
    PUSH = "push"
    APPLY = "apply"
    ROLLOUT = "rollout"  # applied -> the workloads' new pods ready
    READY = "ready"  # -> the resource ready (port-forwards connect)
    SYNC = "sync"  # live update: files copied into a container
    RUN = "run"  # live update: a `run` step
    RESTART = "restart"  # live update: restart_container()
    UPDATE = "update"  # a runner without finer hooks (local_resource, Compose)
    ANSWER = "answer"  # -> the first answer through a port-forward


# Answers kept while an update runs (only the first new one matters; a client polling in
# a loop must not grow the list).
MAX_EARLY_ANSWERS = 64


class Point(StrEnum):
    SAVED = "saved"
    FIRST_LOG = "first log line"


class TraceState(StrEnum):
    OPEN = "open"  # the update runs
    WAITING = "waiting"  # the update is done; rollout and readiness are still to come
    READY = "ready"  # ready; a first answer may still be recorded
    ANSWERED = "answered"
    FAILED = "failed"
    SUPERSEDED = "superseded"  # the next update began before this one got ready


@dataclass
class Span:
    name: str
    start: float
    end: float
    parent: str = ""  # the phase a step belongs to; "" for a phase
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    def to_json(self, origin: float) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "start": round(self.start, 3),
                                "end": round(self.end, 3),
                                "offset": round(self.start - origin, 3),
                                "duration": round(self.duration, 3)}
        if self.parent:
            data["parent"] = self.parent
        if self.attrs:
            data["attrs"] = dict(self.attrs)
        return data


@dataclass(frozen=True)
class FileNotice:
    """A changed file as the watcher saw it: when it was saved (its mtime, 0 when
    unknown), when the watcher got the event, and when the change set was sent."""

    path: str
    saved: float
    seen: float
    sent: float


def union_seconds(spans: list[Span]) -> float:
    """How long the spans cover together (overlaps, e.g. parallel containers, once)."""
    total, reach = 0.0, float("-inf")
    for span in sorted(spans, key=lambda s: s.start):
        start = max(span.start, reach)
        if span.end > start:
            total += span.end - start
        reach = max(reach, span.end)
    return total


def format_seconds(seconds: float) -> str:
    """'12 s', '3.1 s', '0.4 s', '40 ms'."""
    ms = round(seconds * 1000)
    if ms >= 9950:
        return f"{seconds:.0f} s"
    if ms >= 100:
        return f"{seconds:.1f} s"
    return f"{ms} ms"


class UpdateTrace:
    """One update's timeline (see the module docstring)."""

    def __init__(self, resource: str, build: str, *, origin: float,
                 clock: Clock = time.time) -> None:
        self.resource = resource
        self.build = build
        self.origin = origin
        self.clock = clock
        self.phases: list[Span] = []
        self.steps: list[Span] = []
        self.points: list[Span] = []
        self.state = TraceState.OPEN
        self.update_end: float | None = None
        self.dropped_steps = 0
        # Set by the Kubernetes runner: the generation of each workload it applied, so a
        # stale watch reading of the previous generation is not taken for the rollout.
        self.applied_generations: dict[tuple[str, str], int] = {}  # (kind, name) ->
        self.pods_before: frozenset[str] = frozenset()
        # Answers through a forward while the update still ran, as (connection opened,
        # answered): a sync puts the files in place before the exec's result is back, so
        # the user can see the new version before the update ends (see `settle_answers`).
        self.early_answers: list[tuple[float, float]] = []

    # -- recording
    @property
    def cursor(self) -> float:
        """Where the next `mark()`ed phase begins: the end of the last phase."""
        return max((span.end for span in self.phases), default=self.origin)

    def add(self, name: str, start: float, end: float, *, parent: str = "",
            **attrs: Any) -> Span | None:
        span = Span(str(name), start, max(start, end), str(parent), attrs)
        if parent:
            if len(self.steps) >= MAX_STEPS:
                self.dropped_steps += 1
                return None
            self.steps.append(span)
        else:
            self.phases.append(span)
        return span

    def mark(self, name: str, at: float | None = None, **attrs: Any) -> Span | None:
        """A phase that ran from the end of the last phase until `at` (now)."""
        end = self.clock() if at is None else at
        return self.add(name, min(self.cursor, end), end, **attrs)

    @contextlib.contextmanager
    def span(self, name: str, *, parent: str = "", **attrs: Any) -> Iterator[dict[str, Any]]:
        """Time the block as a phase (or a step of `parent`); the block may add attrs to
        the dict it gets. Recorded even when the block raises (with `error`)."""
        start = self.clock()
        extra: dict[str, Any] = dict(attrs)
        try:
            yield extra
        except BaseException as exc:
            extra.setdefault("error", type(exc).__name__)
            raise
        finally:
            self.add(name, start, self.clock(), parent=parent, **extra)

    def point(self, name: str, at: float | None = None, **attrs: Any) -> None:
        at = self.clock() if at is None else at
        self.points.append(Span(str(name), at, at, "", attrs))

    def has(self, name: str) -> bool:
        return any(span.name == name for span in self.phases)

    def has_point(self, name: str) -> bool:
        return any(span.name == name for span in self.points)

    # -- reading
    @property
    def end(self) -> float:
        return self.cursor

    def total(self) -> float:
        return max(0.0, self.end - self.origin)

    def covered(self) -> float:
        """Seconds of the timeline that phases account for."""
        return union_seconds(self.phases)

    def by_phase(self) -> list[tuple[str, float]]:
        """Each phase name with the time it took (the union of its spans), in the order
        the phases first started."""
        order: list[str] = []
        for span in sorted(self.phases, key=lambda s: s.start):
            if span.name not in order:
                order.append(span.name)
        return [(name, union_seconds([s for s in self.phases if s.name == name]))
                for name in order]

    def summary(self) -> str:
        """'3.1 s: build 2.2 s, push 0.4 s, rollout 0.5 s' (phases under 10 ms left out;
        time no phase accounts for is 'other')."""
        total = self.total()
        parts = [f"{name} {format_seconds(seconds)}" for name, seconds in self.by_phase()
                 if seconds >= SUMMARY_MIN_SECONDS]
        other = total - self.covered()
        if other >= max(SUMMARY_MIN_SECONDS, 0.02 * total):
            parts.append(f"other {format_seconds(other)}")
        return f"{format_seconds(total)}: " + ", ".join(parts) if parts else format_seconds(total)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "state": self.state.value, "origin": round(self.origin, 3),
            "total": round(self.total(), 3), "summary": self.summary(),
            "spans": [s.to_json(self.origin) for s in sorted(
                self.phases, key=lambda s: (s.start, s.end))],
            "steps": [s.to_json(self.origin) for s in self.steps],
            "points": [s.to_json(self.origin) for s in self.points]}
        if self.dropped_steps:
            data["droppedSteps"] = self.dropped_steps
        return data


def notice_spans(trace: UpdateTrace, notices: list[FileNotice], started: float) -> None:
    """The phases before the update: saved -> seen -> change set sent -> update started,
    from the earliest notice among the update's files."""
    if not notices:
        return
    first = min(notices, key=lambda n: n.seen)
    saved = first.saved
    if saved <= 0 or first.seen - saved > MAX_SAVE_TO_NOTICE_SECONDS:
        saved = first.seen  # not saved just now (see MAX_SAVE_TO_NOTICE_SECONDS)
    # Written again after the event arrived (the mtime is the last write's): from the event.
    saved = min(saved, first.seen)
    trace.origin = saved
    trace.point(Point.SAVED, saved, file=first.path)
    trace.add(Phase.NOTICE, saved, first.seen)
    trace.add(Phase.DEBOUNCE, first.seen, max(first.seen, first.sent))
    trace.add(Phase.QUEUE, max(first.seen, first.sent), max(first.sent, started))


class Tracer:
    """A resource's recorder: points at the resource's current trace, so tasks that
    outlive one update (the runtime monitor, log streams, port-forwards) record into
    the newest one. `on_change` is told when a milestone is reached."""

    def __init__(self, resource: str, *, clock: Clock = time.time,
                 on_change: Callable[[UpdateTrace, str], None] | None = None) -> None:
        self.resource = resource
        self.clock = clock
        self.current: UpdateTrace | None = None
        self.on_change = on_change
        # Pods seen logging or forwarded to since the last apply: the old pods, which
        # neither the first new log line nor the end of a rollout can come from.
        self._logging: set[str] = set()
        self._targets: set[str] = set()

    def _changed(self, trace: UpdateTrace, what: str) -> None:
        if self.on_change is not None:
            self.on_change(trace, what)

    def _open(self) -> UpdateTrace | None:
        trace = self.current
        if trace is None or trace.state in (TraceState.FAILED, TraceState.SUPERSEDED):
            return None
        return trace

    # -- during the update
    @contextlib.contextmanager
    def span(self, name: str, *, parent: str = "", **attrs: Any) -> Iterator[dict[str, Any]]:
        trace = self._open()
        if trace is None:
            yield dict(attrs)
            return
        with trace.span(name, parent=parent, **attrs) as extra:
            yield extra

    def mark(self, name: str, **attrs: Any) -> None:
        trace = self._open()
        if trace is not None:
            trace.mark(name, **attrs)

    def add(self, name: str, start: float, end: float, *, parent: str = "",
            **attrs: Any) -> None:
        trace = self._open()
        if trace is not None:
            trace.add(name, start, end, parent=parent, **attrs)

    def applied(self, obj: Mapping[str, Any]) -> None:
        """A workload was applied: its rollout counts only from this generation on."""
        trace = self._open()
        meta = obj.get("metadata") or {}
        if trace is not None and isinstance(meta, Mapping):
            key = (str(obj.get("kind", "")), str(meta.get("name", "")))
            trace.applied_generations[key] = int(meta.get("generation") or 0)
            trace.pods_before = trace.pods_before | self._logging | self._targets
            self._logging, self._targets = set(), set()

    # -- after the update: the runtime monitor, log streams, port-forwards
    def observed(self, *, rolled_out: bool, ready: bool,
                 generations: Mapping[tuple[str, str], int] | None = None) -> None:
        """The runtime as the monitor read it: every workload's new pods ready
        (`rolled_out`), the resource ready (`ready`); `generations` each workload's
        ((kind, name)) generation as read, 0 when not seen yet."""
        trace = self._open()
        if trace is None or trace.state != TraceState.WAITING:
            return
        if not rolled_out or not self._fresh(trace, generations or {}):
            return
        now = self.clock()
        if not trace.has(Phase.ROLLOUT):
            trace.mark(Phase.ROLLOUT, now)
            self._changed(trace, "rollout")
        if ready:
            trace.mark(Phase.READY, now)
            trace.state = TraceState.READY
            self._changed(trace, "ready")

    @staticmethod
    def _fresh(trace: UpdateTrace, generations: Mapping[tuple[str, str], int]) -> bool:
        """The watches show every applied workload at the generation applied, not a
        stale reading of the one before."""
        return all(generations.get(key, want) >= want
                   for key, want in trace.applied_generations.items())

    def forwarded(self, pod: str) -> None:
        """A port-forward sends new connections to `pod` (called on every check): when
        that is a pod the apply made, the rollout is over for whoever uses the forward."""
        trace = self._open()
        if trace is not None and trace.state == TraceState.WAITING and pod and \
                not trace.has(Phase.ROLLOUT) and pod not in trace.pods_before:
            trace.mark(Phase.ROLLOUT)
            self._changed(trace, "rollout")
        self._targets.add(pod)

    def log_line(self, pod: str) -> None:
        """A runtime log line from `pod` (cheap: called for every line); '' is not a
        pod's own output (an event about it) and does not count."""
        if not pod:
            return
        trace = self.current
        if trace is None:
            self._logging.add(pod)
            return
        if trace.state in (TraceState.READY, TraceState.WAITING, TraceState.ANSWERED) and \
                pod not in trace.pods_before and not trace.has_point(Point.FIRST_LOG):
            after = trace.update_end or 0.0
            if trace.has(Phase.APPLY) or self.clock() >= after:
                trace.point(Point.FIRST_LOG, pod=pod)
                self._changed(trace, "log")
        self._logging.add(pod)

    @staticmethod
    def _answer_after(trace: UpdateTrace) -> float:
        """When a request must have reached the pod for its answer to be the new one. A
        live update that ended with a sync: from the sync's start, since the files are in
        place before the exec's result is back (and an answer that arrives before ready
        is not counted anyway); anything else: from ready."""
        last = max(trace.phases, key=lambda s: s.end, default=None)
        if last is not None and last.name == Phase.SYNC and not trace.has(Phase.APPLY):
            return last.start
        return trace.cursor

    def answered(self, opened: float) -> None:
        """Bytes came back through a port-forward on a connection opened at `opened`.

        After a rollout the forwards move to the new pods at once (before their own
        probe says they work): an answer on a connection opened after the rollout ends
        readiness there and then."""
        trace = self.current
        if trace is None or trace.has(Phase.ANSWER):
            return
        if trace.state == TraceState.OPEN:
            if len(trace.early_answers) < MAX_EARLY_ANSWERS:
                trace.early_answers.append((opened, self.clock()))
            return
        if trace.state == TraceState.WAITING and trace.has(Phase.ROLLOUT) and \
                opened >= trace.cursor:
            trace.mark(Phase.READY)
            trace.state = TraceState.READY
            self._changed(trace, "ready")
        elif trace.state != TraceState.READY or opened < self._answer_after(trace):
            return  # asked before the update was ready: may be the old version's answer
        trace.mark(Phase.ANSWER)
        trace.state = TraceState.ANSWERED
        self._changed(trace, "answer")

    def settle_answers(self, trace: UpdateTrace) -> bool:
        """A live update became ready and no answer came after that: the last answer that
        came back while it still ran, on a connection opened after the sync began, was
        the new version (a sync puts the files in place before the exec's result is back,
        and whoever asked saw the new answer and stopped asking). It is the answer,
        recorded at ready. True when there was one."""
        early, trace.early_answers = trace.early_answers, []
        after = self._answer_after(trace)
        seen = [at for opened, at in early if opened >= after]
        if trace.state != TraceState.READY or trace.has(Phase.ANSWER) or not seen:
            return False
        trace.add(Phase.ANSWER, trace.cursor, trace.cursor,
                  before_ready=round(max(0.0, trace.cursor - max(seen)), 3))
        trace.state = TraceState.ANSWERED
        return True


CURRENT: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "devloop_tracer", default=None)


def current() -> Tracer | None:
    """The tracer of the update this code runs for, if any."""
    return CURRENT.get()


@contextlib.contextmanager
def span(name: str, *, parent: str = "", **attrs: Any) -> Iterator[dict[str, Any]]:
    """Time the block in the current update's trace (a no-op outside an update)."""
    tracer = CURRENT.get()
    if tracer is None:
        yield dict(attrs)
        return
    with tracer.span(name, parent=parent, **attrs) as extra:
        yield extra


def mark(name: str, **attrs: Any) -> None:
    """End a phase now, begun where the last phase ended (a no-op outside an update)."""
    tracer = CURRENT.get()
    if tracer is not None:
        tracer.mark(name, **attrs)


def step(name: str, start: float, end: float, *, parent: str, **attrs: Any) -> None:
    """Record a step of `parent` that was timed elsewhere (e.g. by BuildKit)."""
    tracer = CURRENT.get()
    if tracer is not None:
        tracer.add(name, start, end, parent=parent, **attrs)


def applied(obj: Mapping[str, Any]) -> None:
    """An object was applied (see `Tracer.applied`; a no-op outside an update)."""
    tracer = CURRENT.get()
    if tracer is not None:
        tracer.applied(obj)


def forwarded(pod: str) -> None:
    """A port-forward points at `pod` (see `Tracer.forwarded`; a no-op outside an update)."""
    tracer = CURRENT.get()
    if tracer is not None:
        tracer.forwarded(pod)
