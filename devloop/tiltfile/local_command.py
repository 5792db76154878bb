"""Run a `local()` command to completion, passing each output line on as it is written.

A command that takes minutes at load time (`npm install`, a cluster check that retries)
shows what it does while it runs, in the Tiltfile's log, instead of all at once at its
end. Lines of stdout and stderr are passed on in the order they arrive, as Tilt shows
them; stdout is also kept whole, since it is local()'s result.

Stopping: the command runs in the evaluation's process group, so the child evaluator's
kill (timeout, Ctrl-C, a new edit) ends it with the evaluation; an exception in this
process (KeyboardInterrupt in an in-process evaluation) kills it before propagating.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

_CHUNK = 65536


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str


def run_streaming(argv: Sequence[str], *, cwd: str, env: Mapping[str, str],
                  input_text: str | None, on_line: Callable[[str], None]) -> Finished:
    """Run `argv` until it exits and its output pipes close, calling `on_line` (in this
    thread) with each line of output. Raises OSError when the command cannot start."""
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env),
        stdin=subprocess.DEVNULL if input_text is None else subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if input_text is not None and process.stdin is not None:
            # Written from a thread: a command that writes before it reads all its input
            # would otherwise wait on us while we wait on it.
            threading.Thread(target=_feed, args=(process.stdin, input_text),
                             name="local-stdin", daemon=True).start()
        assert process.stdout is not None and process.stderr is not None
        stdout, stderr = _pump(process.stdout, process.stderr, on_line)
        returncode = process.wait()
    except BaseException:
        with contextlib.suppress(OSError):
            process.kill()
        process.wait()
        raise
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    return Finished(returncode, stdout.decode("utf-8", "replace"),
                    stderr.decode("utf-8", "replace"))


def _feed(stream: IO[bytes], text: str) -> None:
    with contextlib.suppress(OSError):  # the command may exit without reading it all
        stream.write(text.encode("utf-8"))
    with contextlib.suppress(OSError):
        stream.close()


def _pump(stdout: IO[bytes], stderr: IO[bytes],
          on_line: Callable[[str], None]) -> tuple[bytes, bytes]:
    """Read both pipes to their end; whole lines go to `on_line` as they complete."""
    kept: dict[int, bytearray] = {stdout.fileno(): bytearray(), stderr.fileno(): bytearray()}
    partial: dict[int, bytes] = {fd: b"" for fd in kept}
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                fd = key.fd
                data = os.read(fd, _CHUNK)
                if not data:
                    selector.unregister(fd)
                    if partial[fd]:
                        _emit(partial[fd], on_line)
                        partial[fd] = b""
                    continue
                kept[fd] += data
                *lines, partial[fd] = (partial[fd] + data).split(b"\n")
                for line in lines:
                    _emit(line, on_line)
    return bytes(kept[stdout.fileno()]), bytes(kept[stderr.fileno()])


def _emit(line: bytes, on_line: Callable[[str], None]) -> None:
    # A line may hold carriage returns (progress bars): shown as the lines they draw.
    for piece in line.decode("utf-8", "replace").splitlines() or [""]:
        on_line(piece)
