"""A command kept started and waiting for its stdin in each container it last ran in, so
the next run there only sends its input.

Live update extracts each change set with `tar -x` in the container. Starting a command
in a container (the exec handshake, the API server's call to the kubelet, the runtime's
`runc exec`) takes 50-65 ms on the test cluster; handing a small archive to a `tar` that
is already running and reading its exit status takes 6-7 ms. So after each run in a
container, the next one is started there at once and left waiting on its stdin (an idle
process blocked in read(), costing nothing while it waits), and the next run in that
container hands it the input.

A waiting command that ended meanwhile (its container restarted, its pod went away, the
connection dropped) has sent its Status or closed its stream: that is seen before it is
used, and the run starts a command of its own as before. One that takes the input and
then fails is not trusted either: the run starts a fresh command and gives it the input
again, so the command must be one that can be run twice on the same input (`tar -x` can).
A command that failed when started fresh is not kept waiting in that container, so a
container without the program does not get a hopeless exec after each run.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from devloop.k8s.errors import KubeError
from devloop.k8s.streams import (
    ExecResult,
    exec_blocking,
    exec_what,
    finish_exec,
    start_exec,
)
from devloop.k8s.websocket import ExecStream

if TYPE_CHECKING:
    from devloop.k8s.client import KubeClient

# (namespace, pod, container)
Where = tuple[str, str, str]


class StandbyCommands:
    """`argv` started ahead in each container it ran in, waiting for its stdin."""

    def __init__(self, client: KubeClient, argv: tuple[str, ...]) -> None:
        self._client = client
        self.argv = argv
        self._waiting: dict[Where, ExecStream] = {}
        self._lock = threading.Lock()
        self._closed = False

    def run(self, namespace: str, pod: str, container: str, stdin: bytes) -> ExecResult:
        """Run the command in the container with `stdin` (blocking): on the one waiting
        there when it is still waiting, else on a fresh start. KubeError as for any exec."""
        where = (namespace, pod, container)
        waiting = self._take(where)
        if waiting is not None:
            try:
                result = finish_exec(waiting, stdin, exec_what(*where))
            except KubeError:
                result = None  # it ended while taking the input: start one of our own
            if result is not None and result.exit_code == 0:
                self._start_next(where)
                return result
        result = exec_blocking(self._client, *where, list(self.argv), stdin)
        if result.exit_code == 0:
            self._start_next(where)
        return result

    def waiting_in(self) -> list[Where]:
        """The containers where a started command waits now."""
        with self._lock:
            return [where for where, stream in self._waiting.items() if stream.is_open()]

    def close(self) -> None:
        """End every waiting command (its stdin closes with the connection, so it stops)."""
        with self._lock:
            self._closed = True
            streams = list(self._waiting.values())
            self._waiting.clear()
        for stream in streams:
            stream.close()

    def _take(self, where: Where) -> ExecStream | None:
        with self._lock:
            stream = self._waiting.pop(where, None)
        if stream is not None and not stream.waiting():
            stream.close()
            return None
        return stream

    def _start_next(self, where: Where) -> None:
        threading.Thread(target=self._start, args=(where,), daemon=True,
                         name=f"standby {'/'.join(where)}").start()

    def _start(self, where: Where) -> None:
        try:
            stream = start_exec(self._client, *where, self.argv, stdin=True)
        except KubeError:
            return  # the next run starts its own, and says why if that fails too
        with self._lock:
            ended = [w for w, s in self._waiting.items() if not s.waiting()]
            stale = [self._waiting.pop(w) for w in ended]
            if self._closed or where in self._waiting:
                stale.append(stream)
            else:
                self._waiting[where] = stream
        for old in stale:  # pods deleted since: their streams ended
            with contextlib.suppress(Exception):
                old.close()
