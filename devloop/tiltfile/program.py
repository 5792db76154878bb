"""Assemble rewritten files into one Starlark program, run it, and map errors back.

Layout of the program (one `exec`, so that the module cache and os.environ stay mutable
while it runs; starlark-go freezes globals between execs, and a Python builtin cannot start
another `exec`):

    prelude.star
    def __dl_module_0():          # one function per file; its top level is the body
        <file lines, indented>
        return {exported names}
    __DL_MODULE_FUNCTIONS = {0: __dl_module_0, ...}
    __dl_run_module(0)            # the main Tiltfile
    __dl_finish()

A file reached at run time that is not in the program ends the run; the evaluator adds
it and runs again (see evaluator.py). A source map records where each line came from.

Loaded values are frozen, as in Tilt (`L.append(3)` on a loaded list fails), for the files
that can run first: starlark-go freezes a program's globals when its `exec` ends, so each
such file runs as a program of its own, before the main one, at its top level:

    <prelude, setup>                      # program "<devloop-0>": a file the main one loads
    __DL_MODULES[3] = __DL_EXPORTS_3      #   (the files that ran before it)
    <file 5's lines, at top level>
    __DL_EXPORTS_5 = {exported names}     #   frozen when this exec ends

The evaluator picks those files (`hoisted`): the ones the main file loads before its
first other statement, and theirs, in the order Tilt runs them, as long as nothing of the
file can run differently that early (evaluator.py says which). Every other file runs as
above, as a function, and its values stay mutable.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import starlark_go

from devloop.tiltfile.errors import Location, ResolutionError, TiltfileError
from devloop.tiltfile.source import RewrittenFile

PROGRAM_NAME = "<devloop>"
INDENT = "    "

_FIRST_CHUNK = """
__DL_BUILTIN_TYPE = type
__DL_BUILTIN_STR = str
__DL_BUILTIN_GETATTR = getattr
__DL_BUILTIN_HASATTR = hasattr
__DL_BUILTIN_DIR = dir
__DL_BUILTIN_LEN = len
__DL_BUILTIN_PRINT = print
"""

_configured = False


def _configure() -> None:
    # Tilt runs starlark-go with these dialect options on; Tiltfiles rely on them.
    global _configured
    if not _configured:
        starlark_go.configure_starlark(allow_set=True, allow_global_reassign=True,
                                       allow_recursion=True)
        _configured = True


@dataclass(frozen=True)
class _Origin:
    file: RewrittenFile | None  # None for generated lines
    line: int
    indented: bool


@functools.cache
def prelude() -> str:
    """The Starlark prelude every program starts with (read once per process)."""
    return resources.files("devloop.tiltfile").joinpath("prelude.star").read_text("utf-8")


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class _Chunk:
    """One `exec`: its program name, lines and where each line came from."""

    name: str
    lines: list[str]
    origins: list[_Origin]
    hoisted: int | None = None  # the module this chunk runs first, if any

    def emit(self, text: str, origin: _Origin | None = None) -> None:
        self.lines.append(text)
        self.origins.append(origin or _Origin(None, 0, False))


class Program:
    def __init__(self, files: list[RewrittenFile], main_index: int, *,
                 setup: list[str], leave_out: frozenset[int] = frozenset(),
                 hoisted: tuple[int, ...] = ()) -> None:
        """`files[i]` is module i, except those in `leave_out`; `setup` lines run after
        the prelude (modules, environ wrappers). The modules in `hoisted` run first, in
        that order, each in an `exec` of its own (see the module's docstring)."""
        self.files = files
        self.chunks: list[_Chunk] = []
        for position, index in enumerate(hoisted):
            chunk = self._start_chunk(f"<devloop-{position}>", setup, hoisted[:position])
            chunk.hoisted = index
            self._emit_top_level(chunk, index, files[index])
        main = self._start_chunk(PROGRAM_NAME, setup, hoisted)
        kept = [i for i in range(len(files)) if i not in leave_out and i not in hoisted]
        for index in kept:
            self._emit_module(main, index, files[index])
        table = ", ".join(f"{i}: __dl_module_{i}" for i in kept)
        main.emit(f"__DL_MODULE_FUNCTIONS = {{{table}}}")
        main.emit(f"__dl_run_module({main_index})")
        main.emit("__dl_finish()")

    def _start_chunk(self, name: str, setup: list[str], ran: tuple[int, ...]) -> _Chunk:
        chunk = _Chunk(name, [], [])
        for line in prelude().split("\n") + setup:
            chunk.emit(line)
        for index in ran:  # the files that ran before, as loaded modules
            chunk.emit(f"__DL_MODULES[{index}] = __DL_EXPORTS_{index}; "
                       f"__DL_CALLBACKS.update(__DL_CALLBACKS_{index})")
        self.chunks.append(chunk)
        return chunk

    def _emit_top_level(self, chunk: _Chunk, index: int, file: RewrittenFile) -> None:
        # What it loads ran before it (the evaluator's rule), so no module function runs.
        chunk.emit("__DL_MODULE_FUNCTIONS = {}")
        init = [f"__dl_py_enter_module({index})", f"__file__ = {_literal(file.path)}"]
        init += [f"{name} = __DL_UNSET" for name in file.conditional_names]
        chunk.emit("; ".join(init))
        for number, line in enumerate(file.lines, start=1):
            chunk.emit(line, _Origin(file, number, False))
        exports = ", ".join(f'"{name}": {name}' for name in file.exports)
        chunk.emit(f"__DL_EXPORTS_{index} = {{k: v for k, v in {{{exports}}}.items() "
                   "if v != __DL_UNSET}")
        chunk.emit(f"__DL_CALLBACKS_{index} = dict(__DL_CALLBACKS)")
        chunk.emit("__dl_py_exit_module(); __dl_py_carry_environ(__DL_ENVIRON)")

    def _emit_module(self, chunk: _Chunk, index: int, file: RewrittenFile) -> None:
        chunk.emit(f"def __dl_module_{index}():")
        init = [f"__file__ = {_literal(file.path)}"]
        init += [f"{name} = __DL_UNSET" for name in file.conditional_names]
        chunk.emit(INDENT + "; ".join(init))
        for number, line in enumerate(file.lines, start=1):
            if number in file.string_continuation_lines:
                chunk.emit(line, _Origin(file, number, False))
            else:
                chunk.emit(INDENT + line, _Origin(file, number, True))
        exports = ", ".join(f'"{name}": {name}' for name in file.exports)
        chunk.emit(f"{INDENT}return {{{exports}}}")

    @property
    def text(self) -> str:
        """The main program's text (the last chunk)."""
        return "\n".join(self.chunks[-1].lines)

    # -- running
    def run(self, globals_: dict[str, Any], print_: Callable[[str], None]) -> None:
        _configure()
        interpreter = starlark_go.Starlark(globals=globals_, print=print_)
        interpreter.exec(_FIRST_CHUNK, filename="<devloop-builtins>")
        for chunk in self.chunks:
            before = set(interpreter.globals())
            try:
                interpreter.exec("\n".join(chunk.lines), filename=chunk.name)
            except starlark_go.StarlarkError as exc:
                raise self.translate(exc, chunk.name) from None
            if chunk.hoisted is not None:
                # The file's own names are not the next program's: only its exports (and
                # the callbacks it registered) carry over, frozen.
                keep = {f"__DL_EXPORTS_{chunk.hoisted}", f"__DL_CALLBACKS_{chunk.hoisted}"}
                for name in set(interpreter.globals()) - before - keep:
                    # pop() removes the name, then fails to hand a function to Python.
                    with contextlib.suppress(starlark_go.ConversionError):
                        interpreter.pop(name)

    # -- source map
    def origin(self, line: int, column: int, chunk_name: str = PROGRAM_NAME
               ) -> Location | None:
        chunk = next((c for c in self.chunks if c.name == chunk_name), None)
        if chunk is None or not 1 <= line <= len(chunk.origins):
            return None
        origin = chunk.origins[line - 1]
        if origin.file is None:
            return None
        if origin.indented:
            column -= len(INDENT)
        edits = origin.file.edits.get(origin.line)
        if edits is not None:
            column = edits.original_column(column)
        return Location(origin.file.path, origin.line, max(column, 1))

    def translate(self, exc: starlark_go.StarlarkError, failing: str = PROGRAM_NAME
                  ) -> TiltfileError:
        """The error as the user's files see it; `failing` names the program that raised."""
        if isinstance(exc, starlark_go.ResolveError):
            items = getattr(exc, "errors", [])
            first = items[0] if items else None
            location = self.origin(getattr(first, "line", 0), getattr(first, "column", 0),
                                   failing)
            message = getattr(first, "msg", str(exc))
            return ResolutionError(message, location)
        frames: list[Location] = []
        backtrace = getattr(exc, "backtrace", "") or ""
        for match in _FRAME.finditer(backtrace):
            location = self.origin(int(match.group(2)), int(match.group(3)), match.group(1))
            if location is not None:
                frames.append(location)
        message = _error_message(exc, backtrace)
        location = frames[-1] if frames else self.origin(getattr(exc, "line", 0),
                                                         getattr(exc, "column", 0), failing)
        return TiltfileError(message, location, tuple(frames))


_FRAME = re.compile(r"(<devloop(?:-\d+)?>):(\d+):(\d+): in (\S+)")


def _error_message(exc: starlark_go.StarlarkError, backtrace: str) -> str:
    if backtrace:
        # The message is everything after the last frame line; builtins' messages may span
        # several lines (local() prints the command's stdout and stderr).
        lines = backtrace.strip("\n").splitlines()
        frames = [i for i, line in enumerate(lines) if re.match(r"^\s+\S+:\d+:\d+: in ", line)]
        text = "\n".join(lines[frames[-1] + 1:] if frames else lines[-1:])
        if frames and lines[frames[-1]].rstrip().endswith(" in __dl_attr"):
            # `x.name` (rewritten to __dl_attr) reports like Starlark's own `.name`, not
            # like the getattr() it calls.
            text = re.sub(r"^Error in getattr: (getattr: )?", "", text)
        text = re.sub(r"^Error in (__dl_\w+|located|fail): ", "", text)
        text = re.sub(r"^Error in ([\w.]+): \1: ", r"\1: ", text)
        text = re.sub(r"^Error in ([\w.]+): ", r"\1: ", text)
        text = text.removeprefix("Error: ")
        return text.removeprefix("fail: ")
    return str(getattr(exc, "msg", None) or exc)
