"""Evaluate a Tiltfile in a child process: bounded in time and memory, killable, crash-proof.

Why a child: starlark-go runs inside the Go runtime, and a Go fatal error (a stack overflow
from unbounded recursion, running out of memory) aborts the whole process; a Starlark loop
cannot be interrupted from Python either. In a child process the daemon survives both, the
wall-clock limit is a kill, the memory limit is an rlimit, and `local()` commands started
by the Tiltfile die with it (the child leads its own process group).

Protocol: the parent writes one pickled `_Request` to the child's stdin (kept open: its
end, when the parent reaps the child or dies, kills the child's group); the child answers
on its original stdout with length-prefixed pickled frames: `("output", line)` as the
Tiltfile prints (so `local()` shows what it runs while it runs), then one `("result",
Evaluation)` or `("error", (message, location, backtrace))`. Anything else the child or
its commands write goes to stderr, whose tail explains a crash.

Startup cost: importing the evaluator takes about half a second, so `ChildEvaluator` keeps
one spare child started ahead of time (`keep_spare=True`, the daemon's reloads), which has
its imports done by the time a Tiltfile changes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devloop.tiltfile.errors import TiltfileError
from devloop.tiltfile.loader import ExtensionSettings

if TYPE_CHECKING:
    from devloop.tiltfile.evaluation import Evaluation

_HEADER = struct.Struct("!I")
_STDERR_TAIL = 16 * 1024


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "")
    try:
        return float(text) if text else default
    except ValueError:
        return default


@dataclass(frozen=True)
class Limits:
    """Bounds of one evaluation. The defaults are far above what real Tiltfiles need (they
    evaluate in tens of milliseconds plus their `local()` commands, in well under 200 MB):
    they exist to stop runaway programs, not to tune anything."""

    # Wall clock, `local()` commands included (`npm install` at load time can take minutes).
    timeout_secs: float = 600.0
    # Data segment of the child (Python heap and the Go heap both count).
    memory_bytes: int = 2 * 1024 * 1024 * 1024
    # Largest file a builtin reads whole (read_file, read_yaml, k8s_yaml...).
    max_read_bytes: int = 64 * 1024 * 1024

    @staticmethod
    def from_environ() -> Limits:
        """Limits with DEVLOOP_TILTFILE_TIMEOUT (seconds), DEVLOOP_TILTFILE_MEMORY_MB and
        DEVLOOP_TILTFILE_MAX_READ_MB applied."""
        default = Limits()
        return Limits(
            timeout_secs=_env_number("DEVLOOP_TILTFILE_TIMEOUT", default.timeout_secs),
            memory_bytes=int(_env_number("DEVLOOP_TILTFILE_MEMORY_MB",
                                         default.memory_bytes / 2**20) * 2**20),
            max_read_bytes=int(_env_number("DEVLOOP_TILTFILE_MAX_READ_MB",
                                           default.max_read_bytes / 2**20) * 2**20),
        )


@dataclass(frozen=True)
class _Request:
    path: str
    args: tuple[str, ...]
    subcommand: str
    extensions: ExtensionSettings
    limits: Limits
    cwd: str
    environ: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ parent side


class _Child:
    """One started child, waiting for its request."""

    def __init__(self, *, warm: bool = False) -> None:
        """`warm`: a spare, which has time to warm up before its request comes."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devloop.tiltfile.isolated"] + (["--warm"] if warm else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=_child_environ())

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()

    def reap(self) -> None:
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _child_environ() -> dict[str, str]:
    # The child imports devloop from wherever this process did, whatever its cwd.
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [package_root] + [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environ


class ChildEvaluator:
    """Runs each evaluation in a fresh child process. `cancel()` (from any thread) kills
    the running one and its commands; `close()` also drops the spare."""

    def __init__(self, *, keep_spare: bool = False) -> None:
        self.keep_spare = keep_spare
        self._lock = threading.Lock()
        self._spare: _Child | None = _Child(warm=True) if keep_spare else None
        self._running: _Child | None = None
        self._cancelled = False
        self._pending_cancel = False

    def evaluate(self, path: str, *, args: tuple[str, ...] = (), subcommand: str = "up",
                 extensions: ExtensionSettings | None = None, limits: Limits | None = None,
                 on_output: Callable[[str], None] | None = None) -> Evaluation:
        """Evaluate like `evaluator.evaluate`, in a child. Raises TiltfileError for every
        failure, including a crash, a timeout or a cancel."""
        limits = limits or Limits.from_environ()
        request = _Request(os.path.abspath(path), tuple(args), subcommand,
                           extensions or ExtensionSettings.from_environ(), limits,
                           os.getcwd(), dict(os.environ))
        with self._lock:
            if self._pending_cancel:
                self._pending_cancel = False
                raise TiltfileError("Tiltfile evaluation cancelled")
            child, self._spare = self._spare or _Child(), None
            self._running, self._cancelled = child, False
        try:
            return self._talk(child, request, on_output or (lambda line: None))
        finally:
            child.kill()
            with self._lock:
                self._running = None
                refill = self.keep_spare
            # Off the caller's path: waiting for a process to exit and starting the next
            # one cost milliseconds each.
            threading.Thread(target=self._after, args=(child, refill), name="tiltfile-spare",
                             daemon=True).start()

    def _after(self, child: _Child, refill: bool) -> None:
        child.reap()
        if not refill:
            return
        spare: _Child | None = _Child(warm=True)
        with self._lock:
            if self.keep_spare and self._spare is None:
                self._spare, spare = spare, None
        if spare is not None:
            spare.reap()

    def cancel(self) -> None:
        """Kill the running evaluation, or, if none has started yet, the next one (its
        caller may be about to start it in another thread); `reset_cancel` forgets that."""
        with self._lock:
            if self._running is not None:
                self._cancelled = True
                self._running.kill()
            else:
                self._pending_cancel = True

    def reset_cancel(self) -> None:
        with self._lock:
            self._pending_cancel = False

    def close(self) -> None:
        with self._lock:
            self.keep_spare = False
            spare, self._spare = self._spare, None
            self._cancelled = True
            if self._running is not None:
                self._running.kill()
        if spare is not None:
            spare.reap()

    def _talk(self, child: _Child, request: _Request,
              on_output: Callable[[str], None]) -> Evaluation:
        assert child.process.stdin and child.process.stdout and child.process.stderr
        try:
            # stdin stays open until the child is reaped: its end tells the child that
            # this process is gone (see _die_with_parent).
            child.process.stdin.write(pickle.dumps(request))
            child.process.stdin.flush()
        except BrokenPipeError:
            pass  # the child died first; its stderr says why
        out, err = child.process.stdout.fileno(), child.process.stderr.fileno()
        deadline = time.monotonic() + request.limits.timeout_secs
        buffer, stderr_head, stderr_tail = b"", b"", b""
        last_output = ""
        open_fds = [out, err]
        while open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                child.kill()
                raise TiltfileError(_timeout_message(request, last_output))
            ready, _, _ = select.select(open_fds, [], [], remaining)
            for fd in ready:
                data = os.read(fd, 65536)
                if not data:
                    open_fds.remove(fd)
                elif fd == err:
                    # A Go crash says why first, then dumps every goroutine's stack.
                    if len(stderr_head) < _STDERR_TAIL:
                        stderr_head += data[:_STDERR_TAIL - len(stderr_head)]
                    stderr_tail = (stderr_tail + data)[-_STDERR_TAIL:]
                else:
                    buffer += data
            while len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                if len(buffer) < _HEADER.size + size:
                    break
                kind, payload = pickle.loads(buffer[_HEADER.size:_HEADER.size + size])
                buffer = buffer[_HEADER.size + size:]
                if kind == "output":
                    last_output = payload
                    on_output(payload)
                elif kind == "result":
                    return payload  # type: ignore[no-any-return]
                else:
                    message, location, backtrace = payload
                    raise TiltfileError(message, location, backtrace)
        status = child.process.wait()
        if self._cancelled:
            raise TiltfileError("Tiltfile evaluation cancelled")
        stderr = (stderr_head + stderr_tail).decode(errors="replace")
        raise TiltfileError(_crash_message(request, status, stderr))


def _timeout_message(request: _Request, last_output: str) -> str:
    waiting = f"; last output: {last_output.strip()!r}" if last_output.strip() else ""
    return (f"{request.path}: evaluation did not finish within "
            f"{request.limits.timeout_secs:g} s and was stopped{waiting} (the limit is "
            "DEVLOOP_TILTFILE_TIMEOUT, in seconds)")


def _crash_message(request: _Request, status: int, stderr: str) -> str:
    if "stack overflow" in stderr or "stack exceeds" in stderr:
        why = "stack overflow (unbounded recursion?)"
    elif "out of memory" in stderr or "MemoryError" in stderr or "cannot allocate" in stderr:
        why = (f"out of memory (the limit is {request.limits.memory_bytes // 2**20} MB, "
               "DEVLOOP_TILTFILE_MEMORY_MB)")
    elif status < 0:
        why = f"killed by signal {signal.Signals(-status).name}"
    else:
        lines = [line for line in stderr.splitlines() if line.strip()]
        why = f"exit status {status}" + (f": {lines[-1].strip()}" if lines else "")
    return f"{request.path}: evaluation aborted: {why}"


def evaluate_in_child(path: str, *, args: tuple[str, ...] = (), subcommand: str = "up",
                      extensions: ExtensionSettings | None = None,
                      limits: Limits | None = None,
                      on_output: Callable[[str], None] | None = None) -> Evaluation:
    """One evaluation in a fresh child (no spare kept): for one-shot commands."""
    return ChildEvaluator().evaluate(path, args=args, subcommand=subcommand,
                                     extensions=extensions, limits=limits,
                                     on_output=on_output)


async def evaluate_in_child_async(path: str, *, args: tuple[str, ...] = (),
                                  subcommand: str = "up",
                                  on_output: Callable[[str], None] | None = None
                                  ) -> Evaluation:
    """`evaluate_in_child` for a coroutine: the event loop stays free (Ctrl-C under
    asyncio.run cancels the task instead of raising in blocking code), and cancelling
    kills the child and the commands it started."""
    import asyncio

    from devloop.model.background import spawn

    evaluator = ChildEvaluator()
    running = spawn(asyncio.to_thread(
        evaluator.evaluate, path, args=args, subcommand=subcommand, on_output=on_output),
        name=f"evaluate {path}", handled=True)  # its result or exception is awaited below
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        evaluator.cancel()
        with contextlib.suppress(Exception):
            await running
        raise


# ------------------------------------------------------------------------------- child side


def _send(stream: Any, kind: str, payload: Any) -> None:
    data = pickle.dumps((kind, payload))
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


_WARM_UP_RUNS = 5
_WARM_UP_TILTFILE = """
k8s_yaml("app.yaml")
docker_build("example.com/app", ".")
k8s_resource("app", port_forwards=8000)
local_resource("tool", cmd="true", deps=["app.yaml"])
print(struct(a=1).a, os.path.join("a", "b"), str(read_file("app.yaml"))[:4])
"""
_WARM_UP_YAML = """apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec: {containers: [{name: app, image: example.com/app}]}
"""


def _warm_up(evaluate: Callable[..., Any]) -> None:
    """Evaluate a small Tiltfile a few times while waiting for the request: a process's
    first evaluations pay for lazy imports, first-use caches and Python's not yet
    specialized bytecode (the YAML parser above all): the examples' first evaluation took
    55 ms after one warm-up run and 30 ms after five, as in a long-lived process. Nothing
    it does leaves the temporary directory."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="devloop-warm-") as directory:
        with open(os.path.join(directory, "Tiltfile"), "w", encoding="utf-8") as handle:
            handle.write(_WARM_UP_TILTFILE)
        with open(os.path.join(directory, "app.yaml"), "w", encoding="utf-8") as handle:
            handle.write(_WARM_UP_YAML)
        with open(os.path.join(directory, "Dockerfile"), "w", encoding="utf-8") as handle:
            handle.write("FROM scratch\n")
        with contextlib.suppress(Exception):  # a warm-up failure only costs time
            for _ in range(_WARM_UP_RUNS):
                pickle.dumps(evaluate(os.path.join(directory, "Tiltfile"), subcommand="up"))


def _die_with_parent(limits: Limits) -> None:
    """Kill this process group (the evaluation and the commands it started) when the
    parent closes our stdin or dies without cleaning up (SIGKILL, SIGTERM before its
    handlers are set), or, as a backstop, a little after the parent's own time limit."""
    timer = threading.Timer(limits.timeout_secs + 10, _kill_group)
    timer.daemon = True
    timer.start()
    with contextlib.suppress(OSError, ValueError):
        sys.stdin.buffer.read()
    _kill_group()


def _kill_group() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _child_main() -> int:
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    from devloop.tiltfile import evaluator

    if "--warm" in sys.argv[1:]:
        _warm_up(evaluator.evaluate)
    try:
        request: _Request = pickle.load(sys.stdin.buffer)
    except EOFError:
        return 0  # a spare whose parent is gone
    threading.Thread(target=_die_with_parent, args=(request.limits,), daemon=True).start()
    limit = request.limits.memory_bytes
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.environ)
    try:
        evaluation = evaluator.evaluate(
            request.path, args=request.args, subcommand=request.subcommand,
            extensions=request.extensions, max_read_bytes=request.limits.max_read_bytes,
            on_output=lambda line: _send(protocol, "output", line))
        _send(protocol, "result", evaluation)
    except TiltfileError as exc:
        _send(protocol, "error", (exc.message, exc.location, exc.backtrace))
    except MemoryError:
        _send(protocol, "error", (f"{request.path}: evaluation aborted: out of memory (the "
                                  f"limit is {limit // 2**20} MB, DEVLOOP_TILTFILE_MEMORY_MB)",
                                  None, ()))
    except Exception as exc:  # an evaluator bug must still reach the user as an error
        _send(protocol, "error", (f"{request.path}: evaluation failed: "
                                  f"{type(exc).__name__}: {exc}", None, ()))
    protocol.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
