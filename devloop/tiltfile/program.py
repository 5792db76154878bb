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
"""

from __future__ import annotations

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


def _prelude() -> str:
    return resources.files("devloop.tiltfile").joinpath("prelude.star").read_text("utf-8")


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Program:
    def __init__(self, files: list[RewrittenFile], main_index: int, *,
                 setup: list[str], leave_out: frozenset[int] = frozenset()) -> None:
        """`files[i]` is module i, except those in `leave_out`; `setup` lines run after
        the prelude (modules, environ wrappers)."""
        self.files = files
        self.lines: list[str] = []
        self.origins: list[_Origin] = []
        for line in _prelude().split("\n") + setup:
            self._emit(line)
        kept = [i for i in range(len(files)) if i not in leave_out]
        for index in kept:
            self._emit_module(index, files[index])
        table = ", ".join(f"{i}: __dl_module_{i}" for i in kept)
        self._emit(f"__DL_MODULE_FUNCTIONS = {{{table}}}")
        self._emit(f"__dl_run_module({main_index})")
        self._emit("__dl_finish()")

    def _emit(self, text: str, origin: _Origin | None = None) -> None:
        self.lines.append(text)
        self.origins.append(origin or _Origin(None, 0, False))

    def _emit_module(self, index: int, file: RewrittenFile) -> None:
        self._emit(f"def __dl_module_{index}():")
        init = [f"__file__ = {_literal(file.path)}"]
        init += [f"{name} = __DL_UNSET" for name in file.conditional_names]
        self._emit(INDENT + "; ".join(init))
        for number, line in enumerate(file.lines, start=1):
            if number in file.string_continuation_lines:
                self._emit(line, _Origin(file, number, False))
            else:
                self._emit(INDENT + line, _Origin(file, number, True))
        exports = ", ".join(f'"{name}": {name}' for name in file.exports)
        self._emit(f"{INDENT}return {{{exports}}}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    # -- running
    def run(self, globals_: dict[str, Any], print_: Callable[[str], None]) -> None:
        _configure()
        interpreter = starlark_go.Starlark(globals=globals_, print=print_)
        interpreter.exec(_FIRST_CHUNK, filename="<devloop-builtins>")
        try:
            interpreter.exec(self.text, filename=PROGRAM_NAME)
        except starlark_go.StarlarkError as exc:
            raise self.translate(exc) from None

    # -- source map
    def origin(self, line: int, column: int) -> Location | None:
        if not 1 <= line <= len(self.origins):
            return None
        origin = self.origins[line - 1]
        if origin.file is None:
            return None
        if origin.indented:
            column -= len(INDENT)
        edits = origin.file.edits.get(origin.line)
        if edits is not None:
            column = edits.original_column(column)
        return Location(origin.file.path, origin.line, max(column, 1))

    def translate(self, exc: starlark_go.StarlarkError) -> TiltfileError:
        if isinstance(exc, starlark_go.ResolveError):
            items = getattr(exc, "errors", [])
            first = items[0] if items else None
            location = self.origin(getattr(first, "line", 0), getattr(first, "column", 0))
            message = getattr(first, "msg", str(exc))
            return ResolutionError(message, location)
        frames: list[Location] = []
        backtrace = getattr(exc, "backtrace", "") or ""
        for match in re.finditer(rf"{re.escape(PROGRAM_NAME)}:(\d+):(\d+): in (\S+)", backtrace):
            location = self.origin(int(match.group(1)), int(match.group(2)))
            if location is not None:
                frames.append(location)
        message = _error_message(exc, backtrace)
        location = frames[-1] if frames else self.origin(getattr(exc, "line", 0),
                                                         getattr(exc, "column", 0))
        return TiltfileError(message, location, tuple(frames))


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
