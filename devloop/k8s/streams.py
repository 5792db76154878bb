"""Long-lived Kubernetes streams (pod watches, followed logs) and exec, bridged to asyncio.

Each stream runs in its own thread and hands items to the event loop through
`call_soon_threadsafe` into an unbounded queue; leaving the consumer's `async for` sets a
stop Event and shuts the blocked socket down, so the thread ends promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import urllib3
import yaml

from devloop.k8s.errors import KubeError, error_from_status, is_temporary_status
from devloop.k8s.websocket import ExecStream, open_exec
from devloop.model.background import spawn

if TYPE_CHECKING:
    from devloop.k8s.client import KubeClient

T = TypeVar("T")

# Server-side length of one watch request; the watch is then resumed from the last
# resourceVersion. Five minutes is what client-go's reflectors use at the low end.
WATCH_TIMEOUT_SECS = 300
# Retry delays for temporary failures: doubling from 0.5 s up to 30 s, reset on success.
BACKOFF_FIRST_SECS = 0.5
BACKOFF_MAX_SECS = 30.0
# The event a watcher with `announce_sync` emits after each complete list.
SYNCED = "SYNCED"
# A log follower or watch whose stream failed tries again after at most this long: one
# request every few seconds during an outage is nothing, and lines and pod changes should
# flow again within seconds of the cluster's return (30 s would hide them that long).
RECONNECT_MAX_SECS = 4.0
# Timeout (connect, read) of a log follower's look at its container's state: the API
# server without etcd holds such a request until its own timeout, a minute.
STATE_TIMEOUT = (5.0, 10.0)
# A note about a log (the kubelet's error) is cut to this many characters.
NOTE_MAX_CHARS = 300
# The RFC 3339 timestamp the kubelet puts in front of each line.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z")
# A container ID in the kubelet's messages, shortened as `docker ps` does.
_CONTAINER_ID = re.compile(r"\b[0-9a-f]{64}\b")
# Bytes per stdin frame sent to exec; small enough to keep draining output in between.
EXEC_STDIN_CHUNK = 64 * 1024


@dataclass(frozen=True)
class PodEvent:
    type: str  # ADDED, MODIFIED, DELETED
    pod: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.pod.get("metadata", {}).get("name", ""))


@dataclass(frozen=True)
class LogLine:
    """One line of a container's log with the kubelet's RFC 3339 timestamp; a line with
    no timestamp is a note about the log (the kubelet could not serve it), not a line of
    it, and never moves a cursor."""

    timestamp: str
    text: str

    @property
    def note(self) -> bool:
        return not self.timestamp


@dataclass
class LogCursor:
    """How far a container's log has been shown: the last line's timestamp and how many
    lines carried exactly that timestamp. A new stream resumes after it, so a line appears
    once however often the log is followed again (reconnects, reloads, rollouts)."""

    since: str = ""
    seen: int = 0

    def advance(self, timestamp: str) -> None:
        if not timestamp:
            return  # a note (see LogLine), not a line of the log
        if timestamp == self.since:
            self.seen += 1
        else:
            self.since, self.seen = timestamp, 1


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


class Backoff:
    def __init__(self, maximum: float = BACKOFF_MAX_SECS) -> None:
        self._next = BACKOFF_FIRST_SECS
        self._max = maximum

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._max)
        return delay

    def reset(self) -> None:
        self._next = BACKOFF_FIRST_SECS


class _Runner(Protocol[T]):  # type: ignore[misc]
    def run(self, emit: Callable[[T], None], stop: threading.Event) -> None: ...

    def interrupt(self) -> None: ...


class _Interruptible:
    """Holds the response a worker is blocked on, so another thread can shut it down."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resp: Any = None
        self._stopped = False

    def hold(self, resp: Any) -> None:
        with self._lock:
            self._resp = resp
            stopped = self._stopped
        if stopped:
            self.interrupt()

    def release(self) -> None:
        with self._lock:
            resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()

    def interrupt(self) -> None:
        with self._lock:
            self._stopped = True
            resp = self._resp
        if resp is not None:
            # shutdown() unblocks a read in progress in the worker thread; best effort.
            with contextlib.suppress(Exception):
                resp.shutdown()
            with contextlib.suppress(Exception):
                resp.close()


async def thread_stream(runner: _Runner[T], name: str) -> AsyncIterator[T]:
    """Run `runner.run` in a named thread and yield what it emits; re-raise its error."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()  # unbounded by design
    stop = threading.Event()

    def put(kind: str, value: Any) -> None:
        if stop.is_set():
            return
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            stop.set()

    def target() -> None:
        try:
            runner.run(lambda item: put("item", item), stop)
            put("end", None)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put("error", e)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        runner.interrupt()


def iter_lines(resp: Any) -> Iterator[bytes]:
    """Lines of a streamed HTTP body as they arrive (the last one may lack a newline)."""
    partial = b""
    while True:
        chunk = resp.read1(64 * 1024)
        if not chunk:
            break
        partial += chunk
        *lines, partial = partial.split(b"\n")
        yield from lines
    if partial:
        yield partial


class PodWatcher(_Interruptible):
    """List, then watch, the namespace's pods; resumes from the last version seen, relists
    on 410 Gone. With `announce_sync`, each complete list is followed by a SYNCED event
    (no object): what was emitted so far is the whole collection."""

    def __init__(self, client: KubeClient, namespace: str, label_selector: str, *,
                 watch_timeout: int = WATCH_TIMEOUT_SECS, announce_sync: bool = False) -> None:
        super().__init__()
        self.client = client
        self.path = f"/api/v1/namespaces/{namespace}/pods"
        self.selector = [("labelSelector", label_selector)] if label_selector else []
        self.what = f"pods in {namespace}"
        self.watch_timeout = watch_timeout
        self.announce_sync = announce_sync

    def run(self, emit: Callable[[PodEvent], None], stop: threading.Event) -> None:
        known: dict[str, dict[str, Any]] = {}
        rv = ""
        backoff = Backoff(RECONNECT_MAX_SECS)
        while not stop.is_set():
            try:
                if not rv:
                    rv, known = self._relist(known, emit)
                    if self.announce_sync:
                        emit(PodEvent(SYNCED, {}))
                rv = self._watch(rv, known, emit)
                backoff.reset()
            except KubeError as e:
                if stop.is_set():
                    return
                if e.status == 410:
                    rv = ""
                    continue
                if not e.temporary:
                    raise
                stop.wait(backoff.next())
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                if stop.is_set():
                    return
                # The connection dropped mid-watch: resume from the last version seen.
                stop.wait(backoff.next())
            finally:
                self.release()

    def _relist(self, known: dict[str, dict[str, Any]], emit: Callable[[PodEvent], None],
                ) -> tuple[str, dict[str, dict[str, Any]]]:
        data = self.client.request("GET", self.path, query=self.selector, what=self.what)
        current = {p["metadata"]["name"]: p for p in data.get("items", [])}
        for name, pod in known.items():
            if name not in current:
                emit(PodEvent("DELETED", pod))
        for pod in current.values():
            emit(PodEvent("ADDED", pod))
        return str(data["metadata"]["resourceVersion"]), current

    def _watch(self, rv: str, known: dict[str, dict[str, Any]],
               emit: Callable[[PodEvent], None]) -> str:
        query = [*self.selector, ("watch", "true"), ("resourceVersion", rv),
                 ("timeoutSeconds", self.watch_timeout), ("allowWatchBookmarks", "true")]
        resp = self.client.request("GET", self.path, query=query, stream=True, what=self.what,
                                   timeout=(10.0, self.watch_timeout + 30.0))
        self.hold(resp)
        for line in iter_lines(resp):
            if not line.strip():
                continue
            event = json.loads(line)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                raise error_from_status(code, json.dumps(obj), f"watch {self.what}")
            rv = str(obj.get("metadata", {}).get("resourceVersion") or rv)
            if kind == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if kind == "DELETED":
                known.pop(name, None)
            else:
                known[name] = obj
            emit(PodEvent(str(kind), obj))
        return rv


class KindWatcher(PodWatcher):
    """The same list-then-watch loop over any collection (`path`: its API path)."""

    def __init__(self, client: KubeClient, path: str, what: str, *,
                 watch_timeout: int = WATCH_TIMEOUT_SECS) -> None:
        super().__init__(client, "", "", watch_timeout=watch_timeout, announce_sync=True)
        self.path = path
        self.what = what


class WatchCache:
    """One kind's objects in one namespace, kept current by one list-then-watch that every
    resource shares. Listeners are called (on the event loop) after each change, after each
    complete relist and when the watch fails; they then read `get`/`select`."""

    def __init__(self, make_watcher: Callable[[], PodWatcher], what: str) -> None:
        self._make_watcher = make_watcher
        self.what = what
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = False  # a complete list arrived since the last failure
        self.error = ""  # why the watch failed last, until it lists again
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def listen(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)
        if self._task is None:
            self._task = spawn(self._run(), name=f"watch {self.what}")

    def unlisten(self, callback: Callable[[], None]) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    def select(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The objects carrying every one of `labels`, by name."""
        return [obj for name, obj in sorted(self.objects.items())
                if all((obj.get("metadata", {}).get("labels") or {}).get(k) == v
                       for k, v in labels.items())]

    async def _run(self) -> None:
        backoff = Backoff(RECONNECT_MAX_SECS)
        while True:
            try:
                async for event in thread_stream(self._make_watcher(), f"watch {self.what}"):
                    self._take(event)
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no permission, API gone: say so, list again later
                self.synced, self.error = False, str(exc)
                self._notify()
            await asyncio.sleep(backoff.next())

    def _take(self, event: PodEvent) -> None:
        if event.type == SYNCED:
            self.synced, self.error = True, ""
        elif event.type == "DELETED":
            self.objects.pop(event.name, None)
        else:
            self.objects[event.name] = event.pod
        # During a list, the whole of it is told at once (SYNCED), not object by object.
        if self.synced:
            self._notify()

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def cancel(self) -> None:
        """Stop watching (the watch thread ends when its task's stream is closed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()


class PodEventsWatcher(PodWatcher):
    """The same list-then-watch loop over the namespace's Events about pods."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        super().__init__(client, namespace, "")
        self.path = f"/api/v1/namespaces/{namespace}/events"
        self.selector = [("fieldSelector", "involvedObject.kind=Pod")]
        self.what = f"pod events in {namespace}"


def split_timestamp(line: str) -> tuple[str, str]:
    """(timestamp, text) of a log line as the kubelet sends it with `timestamps=true`;
    ('', line) when it does not start with one: then it is the kubelet's own message
    ("unable to retrieve container logs for ..."), not a line of the container's log."""
    ts, _, text = line.partition(" ")
    if _TIMESTAMP.match(ts):
        return ts, text
    return "", line


def _ts_key(ts: str) -> tuple[str, int]:
    """Sortable key of an RFC 3339 timestamp with optional fractional seconds."""
    base, _, frac = ts.rstrip("Z").partition(".")
    return base, int((frac + "000000000")[:9]) if frac else 0


class LogFollower(_Interruptible):
    """Follows one container's log from a cursor, across dropped connections and API
    server, etcd or kubelet outages: a stream that fails or ends while the container still
    runs is opened again (backoff up to RECONNECT_MAX_SECS) from the last line shown, so no
    line is lost and none shown twice. It ends when the container stops or the pod is gone,
    and never raises for the cluster's troubles: what it cannot do is said in a note."""

    def __init__(self, client: KubeClient, namespace: str, pod: str, container: str,
                 since_time: str | None, seen: int = 0) -> None:
        """Follow from `since_time`, skipping the first `seen` lines stamped exactly then
        (they were shown already, see `LogCursor`)."""
        super().__init__()
        self.client = client
        self.namespace, self.pod, self.container = namespace, pod, container
        self.since = since_time or ""
        self.seen = seen if since_time else 0
        self.what = f"logs of {namespace}/{pod} container {container}"
        # The last line emitted (its timestamp's sort key), how many lines carried exactly
        # that timestamp, and how many of those the current stream still has to skip.
        self._last: tuple[str, int] | None = _ts_key(self.since) if self.since else None
        self._seen_at_last = self.seen
        self._skip = 0
        self._notes: set[str] = set()

    def run(self, emit: Callable[[LogLine], None], stop: threading.Event) -> None:
        backoff = Backoff(RECONNECT_MAX_SECS)
        while not stop.is_set():
            tail = b""
            try:
                emitted, tail = self._stream(emit)
            except KubeError as e:
                if stop.is_set() or e.status == 404:
                    return  # stopped, or the pod is gone
                if e.status == 400 and self._container_pending():
                    stop.wait(1.0)  # still ContainerCreating: its log does not exist yet
                    continue
                if not e.temporary and (e.status in (401, 403)
                                        or self._still_running() is False):
                    self._note(emit, f"cannot follow the log: {e.message}")
                    return
                stop.wait(backoff.next())
                continue
            except (urllib3.exceptions.HTTPError, OSError, ValueError):
                # The connection dropped mid-stream: resume after the last line shown (an
                # unfinished line comes again, whole, with the next stream).
                if stop.is_set():
                    return
                stop.wait(backoff.next())
                continue
            finally:
                self.release()
            if stop.is_set():
                return
            running = self._still_running()
            if running is False:
                if tail:  # the stopped container's last output, without a newline
                    self._take(tail, emit)
                return
            # Still running (or unknown: the API server is away): the stream was cut.
            if emitted:
                backoff.reset()
            stop.wait(backoff.next())

    def _stream(self, emit: Callable[[LogLine], None]) -> tuple[bool, bytes]:
        """One log request; (whether a line was emitted, the unterminated rest)."""
        query: list[tuple[str, Any]] = [("container", self.container), ("follow", "true"),
                                        ("timestamps", "true")]
        if self.since:
            query.append(("sinceTime", self.since))
        path = f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}/log"
        resp = self.client.request("GET", path, query=query, stream=True, what=self.what,
                                   timeout=(10.0, None))
        self.hold(resp)
        # A resumed stream starts again at `sinceTime`'s second: skip what was emitted.
        self._skip = self._seen_at_last
        emitted = False
        partial = b""
        while chunk := resp.read1(64 * 1024):
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for raw in lines:
                emitted = self._take(raw, emit) or emitted
        return emitted, partial

    def _take(self, raw: bytes, emit: Callable[[LogLine], None]) -> bool:
        line = raw.decode(errors="replace").rstrip("\r")
        ts, text = split_timestamp(line)
        if not ts:
            if line.strip():
                self._note(emit, line)
            return False
        key = _ts_key(ts)
        if self._last is not None and key < self._last:
            return False
        if key == self._last and self._skip > 0:
            self._skip -= 1
            return False
        if key == self._last:
            self._seen_at_last += 1
        else:
            self._last, self._seen_at_last = key, 1
            self.since = ts
        emit(LogLine(ts, text))
        return True

    def _note(self, emit: Callable[[LogLine], None], text: str) -> None:
        """Say once what keeps the log from being shown (a note, not a log line)."""
        text = _CONTAINER_ID.sub(lambda m: m.group(0)[:12], " ".join(text.split()))
        if len(text) > NOTE_MAX_CHARS:
            text = text[:NOTE_MAX_CHARS - 1] + "\u2026"
        if text not in self._notes:
            self._notes.add(text)
            emit(LogLine("", f"[log unavailable] {text}"))

    def _container_state(self) -> dict[str, Any] | None:
        pod = self.client.request(
            "GET", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod}", what=self.what,
            timeout=STATE_TIMEOUT)
        status = pod.get("status", {})
        for cs in status.get("containerStatuses", []) + status.get("initContainerStatuses", []):
            if cs.get("name") == self.container:
                return dict(cs.get("state") or {})
        return {}

    def _still_running(self) -> bool | None:
        """Whether the container runs; None when the cluster cannot say now."""
        try:
            state = self._container_state()
        except KubeError as e:
            if e.status == 404:
                return False
            return None if e.temporary else False
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            return None
        return bool(state and "running" in state)

    def _container_pending(self) -> bool:
        try:
            state = self._container_state()
        except (KubeError, urllib3.exceptions.HTTPError, OSError, ValueError):
            return False
        return not state or "waiting" in state


def exec_blocking(client: KubeClient, namespace: str, pod: str, container: str,
                  argv: list[str], stdin: bytes | None) -> ExecResult:
    """Run `argv` in the container over the exec websocket (blocking)."""
    stream = start_exec(client, namespace, pod, container, argv, stdin=stdin is not None)
    return finish_exec(stream, stdin, exec_what(namespace, pod, container))


def exec_what(namespace: str, pod: str, container: str) -> str:
    return f"exec in {namespace}/{pod} container {container}"


def start_exec(client: KubeClient, namespace: str, pod: str, container: str,
               argv: list[str] | tuple[str, ...], *, stdin: bool) -> ExecStream:
    """`argv` started in the container, its stdin not yet sent (blocking)."""
    try:
        return open_exec(client.transport, namespace, pod, container, list(argv),
                         stdin=stdin)
    except KubeError as e:
        # Temporary whatever the status: a pod that is starting or restarting refuses an
        # exec (400, 404, 500) for a moment, and the caller tries again.
        said = e.message if e.status else f"cannot reach the API server: {e.message}"
        raise KubeError(f"{exec_what(namespace, pod, container)}: {said}", temporary=True,
                        status=e.status, reason=e.reason) from e


def finish_exec(ws: ExecStream, stdin: bytes | None, what: str) -> ExecResult:
    """Send `stdin` to a started command and end it, then collect its output and exit
    status (blocking); the stream is closed afterwards."""
    out, err = bytearray(), bytearray()

    def drain(timeout: float) -> None:
        ws.update(timeout=timeout)
        out.extend(ws.read_channel(1))
        err.extend(ws.read_channel(2))

    try:
        if stdin is not None:
            for i in range(0, len(stdin), EXEC_STDIN_CHUNK):
                ws.write_stdin(stdin[i : i + EXEC_STDIN_CHUNK])
                drain(0)
            # EOF on stdin needs the v5 protocol; with v4 the command must not wait for it.
            ws.close_stdin()
        while ws.is_open():
            drain(1.0)
        out.extend(ws.read_channel(1))
        err.extend(ws.read_channel(2))
        status_raw = ws.read_channel(3)
    except Exception as e:  # websocket-client raises its own exception types
        raise KubeError(f"{what}: connection lost: {e}", temporary=True) from e
    finally:
        ws.close()
    return ExecResult(_exit_code(status_raw, what), bytes(out), bytes(err))


def _exit_code(raw: bytes | str, what: str) -> int:
    if not raw:
        raise KubeError(f"{what}: the connection closed without an exit status",
                        temporary=True)
    status = yaml.safe_load(raw)
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            return int(cause.get("message", 1))
    # The API server's failure to reach the kubelet, or a kubelet that does not know the
    # pod yet (just restarted), arrives here as a Status with code 500: worth another try.
    code = status.get("code")
    code = code if isinstance(code, int) else 0
    raise KubeError(f"{what}: {status.get('message') or status}", status=code or None,
                    reason=str(status.get("reason") or ""),
                    temporary=bool(code) and is_temporary_status(code))
